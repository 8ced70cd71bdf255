using PodBridge.Cni;
using PodBridge.Plugin;
using PodBridge.Plugin.Cli;

// A runtime sets CNI_COMMAND: the protocol host parses the invocation and dispatches to the plugin's verbs.
// A person types `podbridge SUBCOMMAND`: the operator command line (Cli/).
return OperatorCli.IsCniInvocation(args)
    ? CniHost.Run("podbridge", new BridgePlugin(), CniHost.ProcessIo())
    : OperatorCli.Run(args);
