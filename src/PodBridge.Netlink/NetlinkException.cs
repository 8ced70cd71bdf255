namespace PodBridge.Netlink;

/// <summary>
/// A kernel or libc call failed. <see cref="Errno"/> is the positive errno; <see cref="KernelMessage"/> is the
/// kernel's extended-ack text (NLMSGERR_ATTR_MSG) when it sent one, or a local explanation for checks made here.
/// </summary>
public sealed class NetlinkException : Exception
{
    public NetlinkException(string operation, int errno, string? kernelMessage = null)
        : base(Format(operation, errno, kernelMessage))
    {
        Operation = operation;
        Errno = errno;
        KernelMessage = string.IsNullOrEmpty(kernelMessage) ? null : kernelMessage;
    }

    public int Errno { get; }
    public string Operation { get; }
    public string? KernelMessage { get; }

    private static string Format(string operation, int errno, string? detail) =>
        string.IsNullOrEmpty(detail)
            ? $"{operation}: {Netlink.Errno.Name(errno)} ({errno})"
            : $"{operation}: {Netlink.Errno.Name(errno)} ({errno}): {detail}";
}

/// <summary>
/// What a request was doing, for exception text only. A struct holding the raw pieces, so the text is built
/// when a request fails rather than on every request.
/// </summary>
internal readonly struct Operation(string verb, string? name = null, int index = 0, object? detail = null, int prefixLength = 0)
{
    public override string ToString() => detail switch
    {
        RouteSpec r => $"{verb} {r.Destination}/{r.PrefixLength}{(r.Gateway is null ? "" : $" via {r.Gateway}")} dev ifindex {r.OutIndex}",
        System.Net.IPAddress a => $"{verb} {a}/{prefixLength} on ifindex {index}",
        string peer => $"{Subject} (peer {peer})",
        _ => Subject,
    };

    private string Subject => name is not null ? $"{verb} {name}" : index != 0 ? $"{verb} ifindex {index}" : verb;
}
