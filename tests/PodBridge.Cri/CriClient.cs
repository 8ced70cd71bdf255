using System.Net.Sockets;
using Grpc.Net.Client;
using PodBridge.Cri.V1;

namespace PodBridge.Cri;

/// <summary>
/// A CRI RuntimeService client connected the way kubelet connects: HTTP/2 gRPC over the runtime's unix socket.
/// The URI's authority is a placeholder ("localhost", as kubelet's dialer uses); every connection goes to the socket.
/// </summary>
public sealed class CriClient : IDisposable
{
    private readonly GrpcChannel _channel;

    public CriClient(string socketPath)
    {
        SocketPath = socketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            // kubelet's default CRI message limit (16 MiB) instead of gRPC's 4 MiB.
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        });
        Runtime = new RuntimeService.RuntimeServiceClient(_channel);
    }

    public string SocketPath { get; }

    public RuntimeService.RuntimeServiceClient Runtime { get; }

    public void Dispose() => _channel.Dispose();
}
