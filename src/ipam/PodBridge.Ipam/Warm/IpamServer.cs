using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using PodBridge.Cni;

namespace PodBridge.Ipam.Warm;

/// <summary>
/// `podbridge-ipam serve`: the IPAM of one data dir, resident, with the lease database kept open between requests.
/// Nothing about the guarantees changes: each request is one transaction under the same flock the in-process path
/// takes (so server and plugins never write at once), committed with fdatasync before the answer is sent, and the
/// open engine is reused only when nobody else had the lock in between (see <see cref="LiteDbLeaseStore"/>).
/// Killed at any moment, it loses nothing a client was told is done; the client retries in-process.
/// </summary>
public sealed class IpamServer : IDisposable
{
    private static readonly TimeSpan RequestReadTimeout = TimeSpan.FromSeconds(5);

    private readonly string _dataDir;
    private readonly string _socketPath;
    private readonly LiteDbLeaseStore _store;
    private readonly PodBridgeIpam _ipam;
    private readonly TextWriter _out;
    private readonly object _gate = new();
    private UnixSocket? _listener;
    private int _inFlight;

    public IpamServer(string dataDir, TextWriter output)
    {
        _dataDir = Path.GetFullPath(dataDir);
        _socketPath = Path.Combine(_dataDir, WarmProtocol.SocketName);
        _store = new LiteDbLeaseStore(_dataDir, null, keepOpen: true);
        _ipam = new PodBridgeIpam(_ => _store, LinuxHostProbe.Instance);
        _out = output;
    }

    public string SocketPath => _socketPath;

    /// <summary>Serves until <see cref="Stop"/> (SIGTERM/SIGINT in the executable). Returns the exit code.</summary>
    public int Run()
    {
        try
        {
            if (!Directory.Exists(_dataDir) && !OperatingSystem.IsWindows())
                Directory.CreateDirectory(_dataDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            if (File.Exists(_socketPath))
            {
                try
                {
                    using (UnixSocket.Connect(_socketPath, UnixSocket.DeadlineIn(TimeSpan.FromMilliseconds(200)))) { }
                    _out.WriteLine($"podbridge-ipam serve: another server already answers on {_socketPath}");
                    return 1;
                }
                catch (Exception e) when (e is IOException or TimeoutException)
                {
                    File.Delete(_socketPath); // left by a server that was killed
                }
            }
            _listener = UnixSocket.Listen(_socketPath);
            // Opening (and upgrading) the database now, not in the first pod's ADD.
            lock (_gate)
                using (_store.Open()) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CniException)
        {
            _out.WriteLine($"podbridge-ipam serve: cannot serve {_dataDir}: {e.Message}");
            return 1;
        }
        _out.WriteLine($"podbridge-ipam serve: serving {_dataDir} on {_socketPath}");
        _out.Flush();

        while (_listener.Accept() is { } client)
        {
            Interlocked.Increment(ref _inFlight);
            new Thread(() => Serve(client)) { IsBackground = true, Name = "ipam-request" }.Start();
        }

        // Stopping: let requests in flight finish their transaction and answer.
        var waited = Stopwatch.StartNew();
        while (Volatile.Read(ref _inFlight) > 0 && waited.Elapsed < WarmClient.ResponseTimeout) Thread.Sleep(10);
        _out.WriteLine("podbridge-ipam serve: stopped");
        _out.Flush();
        return 0;
    }

    /// <summary>Stops accepting; <see cref="Run"/> returns once the requests in flight are answered.</summary>
    public void Stop()
    {
        try { File.Delete(_socketPath); } catch (IOException) { }
        _listener?.Shutdown();
    }

    public void Dispose()
    {
        lock (_gate) _store.CloseWarm();
        _listener?.Dispose();
    }

    private void Serve(UnixSocket client)
    {
        var started = Stopwatch.GetTimestamp();
        var what = "?";
        var status = "dropped";
        try
        {
            using (client)
            {
                var payload = WarmProtocol.ReadMessage(client, UnixSocket.DeadlineIn(RequestReadTimeout));
                client.SendAll([WarmProtocol.Ack], UnixSocket.DeadlineIn(RequestReadTimeout));
                byte[] response;
                lock (_gate)
                {
                    response = Handle(payload, ref what);
                    Log.Flush();
                }
                status = ((char)response[4]).ToString();
                client.SendAll(response, UnixSocket.DeadlineIn(RequestReadTimeout));
            }
        }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidDataException)
        {
            status += $" ({e.Message})";
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
        lock (_out)
        {
            _out.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {what} {status} {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F1}ms");
            _out.Flush();
        }
    }

    private byte[] Handle(byte[] payload, ref string what)
    {
        try
        {
            var (env, config) = WarmProtocol.DecodeRequest(payload);
            var request = CniEnvironment.Parse(name => env.GetValueOrDefault(name), () => config);
            what = $"{request.Verb.Name()} {request.ContainerId}/{request.IfName}";
            var conf = NetConf.Parse(request.StdinConfig);
            if (Path.GetFullPath(IpamSettings.ForRelease(conf).DataDir) != _dataDir)
                return WarmProtocol.Response(WarmProtocol.NotMine, []);
            Log.Begin("podbridge-ipam serve", request);
            switch (request.Verb)
            {
                case CniVerb.Add:
                    var result = _ipam.Add(request, conf);
                    return WarmProtocol.Response(WarmProtocol.Result, result.ToJson(CniVersion.Latest));
                case CniVerb.Del:
                    _ipam.Del(request, conf);
                    return WarmProtocol.Response(WarmProtocol.Ok, []);
                case CniVerb.Check:
                    _ipam.Check(request, conf);
                    return WarmProtocol.Response(WarmProtocol.Ok, []);
                default:
                    return WarmProtocol.Response(WarmProtocol.NotMine, []);
            }
        }
        catch (CniException e)
        {
            return WarmProtocol.Response(WarmProtocol.Error, WarmProtocol.ErrorBody(e));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.Error($"warm IPAM request failed: {e}");
            lock (_gate) _store.CloseWarm();
            return WarmProtocol.Response(WarmProtocol.Failed, Encoding.UTF8.GetBytes(e.Message));
        }
    }

    /// <summary>SIGTERM / SIGINT stop the server cleanly (socket removed, database closed).</summary>
    public PosixSignalRegistration[] StopOnSignals() =>
    [
        PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; Stop(); }),
        PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; Stop(); }),
    ];
}
