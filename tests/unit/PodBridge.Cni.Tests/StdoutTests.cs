using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PodBridge.Cni.Tests;

/// <summary>The hand-built VERSION document, the output encoder and the raw descriptors behind stdin/stdout.</summary>
public class StdoutTests
{
    private static string WithWriter(string cniVersion)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, CniResult.JsonOutput))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", cniVersion);
            w.WriteStartArray("supportedVersions");
            foreach (var v in CniVersion.Supported) w.WriteStringValue(v);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    [Theory]
    [InlineData("1.1.0")]
    [InlineData("0.3.0")]
    [InlineData("2.0.0-rc1+build_5")]
    [InlineData("1.0\"\\x")]       // needs escaping: written by the JSON writer
    [InlineData("dé")]
    public void Version_document_is_what_the_json_writer_prints(string cniVersion)
    {
        var ms = new MemoryStream();
        CniHost.WriteVersion(ms, cniVersion);
        var text = Encoding.UTF8.GetString(ms.ToArray());
        Assert.Equal(WithWriter(cniVersion), text);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(cniVersion, doc.RootElement.GetProperty("cniVersion").GetString());
        Assert.Equal(CniVersion.Supported, doc.RootElement.GetProperty("supportedVersions").EnumerateArray().Select(e => e.GetString()!));
    }

    private static string Encode(JavaScriptEncoder encoder, string value)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = encoder }))
        {
            w.WriteStartObject();
            w.WriteString("msg", value);
            w.WriteString("utf8"u8, Encoding.UTF8.GetBytes(value));
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    [Theory]
    [InlineData("plain ascii 10.1.0.5/24")]
    [InlineData("quotes \" and \\ backslash")]
    [InlineData("it's <b>&amp;</b> + ` ~")]
    [InlineData("tab\tnewline\ncr\rnul\0bell\u0007 esc\u001b del\u007f")]
    [InlineData("non-ASCII: é ü 日本語 €")]
    [InlineData("emoji 🙂 outside the BMP")]
    public void Encoder_escapes_like_the_relaxed_framework_encoder(string value)
    {
        var ours = Encode(CniJsonEncoder.Instance, value);
        Assert.Equal(Encode(JavaScriptEncoder.UnsafeRelaxedJsonEscaping, value), ours);
        using var doc = JsonDocument.Parse(ours);
        Assert.Equal(value, doc.RootElement.GetProperty("msg").GetString());
        Assert.Equal(value, doc.RootElement.GetProperty("utf8").GetString());
    }

    [Fact]
    public void Encoder_escapes_line_separators_and_c1_controls_and_replaces_lone_surrogates()
    {
        var ours = Encode(CniJsonEncoder.Instance, "a\u2028b\u2029c\u0085d\ud800e");
        Assert.Contains("a\\u2028b\\u2029c\\u0085d", ours);
        using var doc = JsonDocument.Parse(ours);
        Assert.StartsWith("a\u2028b\u2029c\u0085d", doc.RootElement.GetProperty("msg").GetString());
        Assert.DoesNotContain('\ud800', doc.RootElement.GetProperty("msg").GetString()!);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(8192)]
    [InlineData(100_000)]
    public void ReadAll_reads_a_descriptor_to_its_end(int size)
    {
        var path = Path.GetTempFileName();
        try
        {
            var data = new byte[size];
            Random.Shared.NextBytes(data);
            File.WriteAllBytes(path, data);
            using var handle = File.OpenHandle(path);
            Assert.Equal(data, RawStdio.ReadAll((int)handle.DangerousGetHandle()));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void FdWriter_writes_everything_and_reports_errors_as_IOException()
    {
        var path = Path.GetTempFileName();
        try
        {
            using (var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write))
            {
                var w = new RawStdio.FdWriter((int)handle.DangerousGetHandle());
                w.Write("{\"a\":1}"u8);
                w.Write([(byte)'\n'], 0, 1);
            }
            Assert.Equal("{\"a\":1}\n", File.ReadAllText(path));
            using (var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read))
            {
                var e = Assert.Throws<IOException>(() => new RawStdio.FdWriter((int)handle.DangerousGetHandle()).Write("x"u8));
                Assert.Contains("EBADF", e.Message.Contains("errno 9") ? "EBADF" : e.Message);
            }
        }
        finally { File.Delete(path); }
    }
}
