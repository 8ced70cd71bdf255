using PodBridge.Cni;
using PodBridge.Ipam;

namespace PodBridge.IpamPlugin;

/// <summary>
/// Runtimes invoke a CNI plugin without arguments: then this is the IPAM plugin. With arguments it is the
/// operator's tool for the lease database.
/// </summary>
internal static class Program
{
    private abstract record Command
    {
        public sealed record Cni : Command;
        public sealed record Leases(string DataDir) : Command;
        public sealed record Repair(string DataDir) : Command;
        public sealed record Serve(string DataDir) : Command;
        public sealed record Usage(string? Error) : Command;
    }

    private static int Main(string[] args) => Parse(args) switch
    {
        Command.Cni => CniHost.Run("podbridge-ipam", new PodBridgeIpam(), CniHost.ProcessIo()),
        Command.Leases l => IpamAdmin.Leases(l.DataDir, Console.OpenStandardOutput(), Console.Error),
        Command.Repair r => IpamAdmin.Repair(r.DataDir, Console.Out, Console.Error),
        Command.Serve s => Serve(s.DataDir),
        Command.Usage u => PrintUsage(u.Error),
        _ => 2,
    };

    private static Command Parse(string[] args)
    {
        if (args.Length == 0) return new Command.Cni();
        var dataDir = IpamSettings.DefaultDataDir;
        for (var i = 1; i < args.Length; i++)
        {
            if (args[i] == "--data-dir" && i + 1 < args.Length) dataDir = args[++i];
            else return new Command.Usage($"unknown argument '{args[i]}'");
        }
        return args[0] switch
        {
            "leases" => new Command.Leases(dataDir),
            "repair" => new Command.Repair(dataDir),
            "serve" => new Command.Serve(dataDir),
            "help" or "--help" or "-h" => new Command.Usage(null),
            _ => new Command.Usage($"unknown command '{args[0]}'"),
        };
    }

    private static int Serve(string dataDir)
    {
        using var server = new Ipam.Warm.IpamServer(dataDir, Console.Error);
        var signals = server.StopOnSignals();
        try { return server.Run(); }
        finally { foreach (var s in signals) s.Dispose(); }
    }

    private static int PrintUsage(string? error)
    {
        if (error is not null) Console.Error.WriteLine($"podbridge-ipam: {error}");
        Console.Error.WriteLine("""
            usage: podbridge-ipam                             CNI IPAM plugin (CNI_COMMAND etc. in the environment)
                   podbridge-ipam leases [--data-dir DIR]     print every lease as one JSON object per line
                   podbridge-ipam repair [--data-dir DIR]     rebuild a database that reports code 105 (keeps a backup)
                   podbridge-ipam serve [--data-dir DIR]      the warm IPAM: keep DIR's database open and answer the
                                                              plugins on DIR/podbridge-ipam.sock (root only) until
                                                              SIGTERM; plugins fall back to in-process without it
            DIR defaults to /var/lib/cni/podbridge (the ipam.dataDir of the network config).
            """);
        return error is null ? 0 : 2;
    }
}
