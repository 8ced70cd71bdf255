using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using PodBridge.Cni;

namespace PodBridge.Ipam.Warm;

/// <summary>
/// The warm IPAM's wire format over its unix socket. One request per connection:
///   client → server   u32le length, then "PBIPAM1\n", the invocation's CNI_* variables as "NAME=value\n" lines,
///                     an empty line, the network config exactly as the plugin read it from stdin
///   server → client   one byte 'A' as soon as the request is read (the server is alive and has it), then
///                     u32le length, a status byte and its body:
///                     'R' result JSON (ADD) · 'O' done, no output · 'E' error JSON {code,msg,details} ·
///                     'N' not this server's (another data dir, a verb it does not serve) · 'F' it failed
///                     unexpectedly, nothing committed
/// The server re-reads the config with the same parser as the plugin, so both sides see one config.
/// </summary>
internal static class WarmProtocol
{
    public const string SocketName = "podbridge-ipam.sock";
    public const int MaxMessage = 16 << 20;
    private static ReadOnlySpan<byte> Magic => "PBIPAM1\n"u8;

    public const byte Ack = (byte)'A';
    public const byte Result = (byte)'R', Ok = (byte)'O', Error = (byte)'E', NotMine = (byte)'N', Failed = (byte)'F';

    private static readonly string[] Variables =
        [CniEnvironment.Command, CniEnvironment.ContainerIdVar, CniEnvironment.NetNsVar, CniEnvironment.IfNameVar, CniEnvironment.ArgsVar, CniEnvironment.PathVar];

    /// <summary>
    /// <paramref name="verb"/> is what the caller asks of the IPAM, which is not always the invocation's CNI_COMMAND:
    /// the bridge's ADD rollback releases the allocation with a DEL carrying the ADD's request.
    /// Null when the invocation cannot be framed (a variable holding a newline): then it stays in-process.
    /// </summary>
    public static byte[]? EncodeRequest(CniVerb verb, CniRequest r)
    {
        var head = new StringBuilder();
        head.Append("PBIPAM1\n");
        head.Append(CniEnvironment.Command).Append('=').Append(verb switch
        {
            CniVerb.Add => "ADD",
            CniVerb.Del => "DEL",
            CniVerb.Check => "CHECK",
            _ => throw new ArgumentOutOfRangeException(nameof(verb), verb, "the warm IPAM serves ADD, CHECK and DEL"),
        }).Append('\n');
        foreach (var name in Variables)
        {
            if (name == CniEnvironment.Command || !r.Environment.TryGetValue(name, out var value)) continue;
            if (value.Contains('\n')) return null;
            head.Append(name).Append('=').Append(value).Append('\n');
        }
        head.Append('\n');
        var headBytes = Encoding.UTF8.GetBytes(head.ToString());
        var message = new byte[4 + headBytes.Length + r.StdinConfig.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)(headBytes.Length + r.StdinConfig.Length));
        headBytes.CopyTo(message, 4);
        r.StdinConfig.CopyTo(message, 4 + headBytes.Length);
        return message;
    }

    /// <summary>The variables and the config of a request payload (without its length prefix).</summary>
    public static (Dictionary<string, string> Env, byte[] Config) DecodeRequest(byte[] payload)
    {
        if (!payload.AsSpan().StartsWith(Magic)) throw new InvalidDataException("not a podbridge-ipam request");
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        var pos = Magic.Length;
        while (true)
        {
            var nl = payload.AsSpan(pos).IndexOf((byte)'\n');
            if (nl < 0) throw new InvalidDataException("truncated request header");
            if (nl == 0) { pos++; break; }
            var line = Encoding.UTF8.GetString(payload, pos, nl);
            var eq = line.IndexOf('=');
            if (eq <= 0 || Array.IndexOf(Variables, line[..eq]) < 0) throw new InvalidDataException($"bad request line '{line}'");
            env[line[..eq]] = line[(eq + 1)..];
            pos += nl + 1;
        }
        return (env, payload[pos..]);
    }

    public static byte[] Response(byte status, ReadOnlySpan<byte> body)
    {
        var message = new byte[4 + 1 + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)(1 + body.Length));
        message[4] = status;
        body.CopyTo(message.AsSpan(5));
        return message;
    }

    public static byte[] ErrorBody(CniException e)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("code", (int)e.Code);
            w.WriteString("msg", e.Message);
            if (e.Details is not null) w.WriteString("details", e.Details);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    public static CniException ParseError(ReadOnlySpan<byte> body)
    {
        using var doc = JsonDocument.Parse(body.ToArray());
        var root = doc.RootElement;
        return new CniException((CniErrorCode)root.GetProperty("code").GetInt32(), root.GetProperty("msg").GetString() ?? "",
            root.TryGetProperty("details", out var d) ? d.GetString() : null);
    }

    /// <summary>Reads one length-prefixed message.</summary>
    public static byte[] ReadMessage(UnixSocket s, long deadline)
    {
        Span<byte> len = stackalloc byte[4];
        s.ReceiveExactly(len, deadline);
        var n = BinaryPrimitives.ReadUInt32LittleEndian(len);
        if (n == 0 || n > MaxMessage) throw new InvalidDataException($"message of {n} bytes");
        var payload = new byte[n];
        s.ReceiveExactly(payload, deadline);
        return payload;
    }
}
