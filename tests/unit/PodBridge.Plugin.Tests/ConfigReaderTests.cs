using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using PodBridge.Cni;
using PodBridge.Ipam;
using static PodBridge.Plugin.Tests.Helpers;

namespace PodBridge.Plugin.Tests;

/// <summary>
/// The hand-written config reader (ConfigReader) under its three schemas, read from the same bytes: the common keys
/// (NetConf), the bridge keys (BridgeKeys) and the IPAM's (IpamNetConf). The rules the source-generated serializer
/// used to apply, the edge cases a hand-written reader could get wrong, and a guard that each schema's reader reads
/// every key its types declare.
/// </summary>
public class ConfigReaderTests
{
    /// <summary>A config with cniVersion and name, then <paramref name="body"/> written with ' for ".</summary>
    private static byte[] Config(string body) => Utf8(("{'cniVersion':'1.0.0','name':'n'," + body + "}").Replace('\'', '"'));

    /// <summary>All three schemas of one config, in the order the plugin reads them.</summary>
    private sealed record All(NetConf Conf, BridgeKeys Bridge, IpamNetConf Ipam)
    {
        public string? Name => Conf.Name;
        public List<string>? CniVersions => Conf.CniVersions;
        public Dictionary<string, bool>? Capabilities => Conf.Capabilities;
        public JsonElement? PrevResult => Conf.PrevResult;
        public RuntimeConfig? RuntimeConfig => Conf.RuntimeConfig;
        public ArgsConfig? Args => Conf.Args;
        public List<GcAttachment>? Attachments => Conf.Attachments;
        public int? Mtu => Bridge.Mtu;
        public int? Vlan => Bridge.Vlan;
        public bool IsGateway => Bridge.IsGateway;
    }

    private static All ParseAll(byte[] json)
    {
        var conf = NetConf.Parse(json);
        return new All(conf, BridgeKeys.Read(conf), IpamNetConf.Read(conf));
    }

    private static All Parse(string body) => ParseAll(Config(body));

    private static CniException WrongType(string body, string key)
    {
        var e = Throws(() => Parse(body));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Equal($"network config: {key} has the wrong type", e.Message);
        return e;
    }

    [Fact]
    public void Every_declared_key_is_read_into_its_own_property()
    {
        // Sets every [JsonPropertyName] key of every config type of a schema to a value derived from its key path,
        // then checks each property holds exactly that: a key missing from its reader, or mapped to the wrong
        // property, fails.
        Check(typeof(NetConf), c => c, "ipam.type");
        Check(typeof(BridgeKeys), BridgeKeys.Read, "portIsolation");
        Check(typeof(IpamNetConf), IpamNetConf.Read, "ipam.ranges.gateway");

        static void Check(Type root, Func<NetConf, object> read, string sample)
        {
            var json = Config(ObjectJson(root, "")[1..^1]);
            var checkedKeys = new List<string>();
            AssertRead(read(NetConf.Parse(json)), "", checkedKeys);
            Assert.Equal(CountKeys(root), checkedKeys.Count);
            Assert.Contains(sample, checkedKeys);
        }
    }

    [Fact]
    public void Null_is_the_wrong_type_for_a_bool_but_clears_a_nullable()
    {
        WrongType(@"'isGateway':null", "isGateway");
        WrongType(@"'capabilities':{'ips':null}", "capabilities.ips");
        Assert.Null(Parse(@"'mtu':1400,'mtu':null").Mtu);
        Assert.Null(Parse(@"'ipam':{'type':'x'},'ipam':null").Conf.Ipam);
        Assert.Null(Parse(@"'ipam':{'type':'x'},'ipam':null").Ipam.Ipam);
    }

    [Theory]
    [InlineData("1e3")]
    [InlineData("1.0")]
    [InlineData("1500.0")]
    [InlineData("2147483648")]
    [InlineData("-2147483649")]
    [InlineData("99999999999")]
    [InlineData("\"1500\"")]
    [InlineData("[1500]")]
    [InlineData("false")]
    public void An_int_takes_only_an_integer_literal_in_range(string value) =>
        WrongType($@"'mtu':{value}", "mtu");

    [Theory]
    [InlineData("0", 0)]
    [InlineData("-0", 0)]
    [InlineData("2147483647", int.MaxValue)]
    [InlineData("-2147483648", int.MinValue)]
    public void Integer_bounds(string value, int expected) =>
        Assert.Equal(expected, Parse($@"'vlan':{value}").Vlan);

    [Fact]
    public void The_last_duplicate_key_wins_and_replaces_a_whole_object()
    {
        var c = Parse(@"'name':'m','isGateway':true,'isGateway':false,'ipam':{'type':'a','subnet':'10.0.0.0/8'},'ipam':{'type':'b'},'capabilities':{'ips':true,'ips':false}");
        Assert.Equal("m", c.Name);
        Assert.False(c.IsGateway);
        Assert.Equal("b", c.Conf.Ipam!.Type);
        Assert.Equal("b", c.Ipam.Ipam!.Type);
        Assert.Null(c.Ipam.Ipam.Subnet);
        Assert.False(c.Capabilities!["ips"]);
    }

    [Fact]
    public void Escaped_keys_match_and_errors_name_them_unescaped()
    {
        Assert.Equal(1400, Parse(@"'\u006dtu':1400").Mtu);
        Assert.Equal("1.0.0", NetConf.Parse(Utf8("""{"cni\u0056ersion":"1.0.0","name":"n"}""")).Version);
        WrongType(@"'ipam':{'r\u0061nges':[[{'sub\u006eet':1}]]}", "ipam.ranges[0][0].subnet");
        WrongType(@"'capabilities':{'a\u002eb':1}", "capabilities.a.b");
    }

    [Fact]
    public void Null_list_elements_are_kept()
    {
        var c = Parse(@"'cniVersions':[null,'1.0.0'],'ipam':{'ranges':[null,[null]],'routes':[null]},'cni.dev/attachments':[null]");
        Assert.Null(c.CniVersions![0]);
        Assert.Equal("1.0.0", c.CniVersions[1]);
        Assert.Null(c.Ipam.Ipam!.Ranges![0]);
        Assert.Null(c.Ipam.Ipam.Ranges[1][0]);
        Assert.Null(c.Ipam.Ipam.Routes![0]);
        Assert.Null(c.Attachments![0]);
    }

    [Theory]
    [InlineData("""5""", JsonValueKind.Number)]
    [InlineData("""  "text" """, JsonValueKind.String)]
    [InlineData("""[1,{"a":[]}]""", JsonValueKind.Array)]
    [InlineData("""{"a":1},"prevResult":{"b":{"c":[true]}}""", JsonValueKind.Object)]
    public void PrevResult_keeps_any_json_value(string value, JsonValueKind kind)
    {
        var c = Parse($@"'prevResult':{value},'mtu':9000");
        Assert.Equal(kind, c.PrevResult!.Value.ValueKind);
        Assert.Equal(9000, c.Mtu); // the reader resumes after the sub-tree
        if (kind == JsonValueKind.Object) Assert.True(c.PrevResult.Value.GetProperty("b").GetProperty("c")[0].GetBoolean());
    }

    [Fact]
    public void Unknown_keys_are_skipped_at_every_level_whatever_their_value()
    {
        var c = Parse(@"'x':{'ipam':5,'mtu':'no'},'ipam':{'x':[[{'subnet':1}]],'ranges':[[{'x':{'y':[null]},'subnet':'10.1.0.0/16'}]]},'args':{'k8s':{'cni':1},'cni':{'labels':[{'k':'v'}],'mac':'0a:58:00:00:00:01'}},'runtimeConfig':{'portMappings':[{'hostPort':80}]},'mtu':1450");
        Assert.Equal("10.1.0.0/16", c.Ipam.Ipam!.Ranges![0][0].Subnet);
        Assert.Equal("0a:58:00:00:00:01", c.Args!.Cni!.Mac);
        Assert.NotNull(c.RuntimeConfig);
        Assert.Equal(1450, c.Mtu);
    }

    [Theory]
    [InlineData(@"'dns':{'search':[1]}", "dns.search[0]")]
    [InlineData(@"'dns':{'options':'ndots:5'}", "dns.options")]
    [InlineData(@"'ipam':{'routes':['0.0.0.0/0']}", "ipam.routes[0]")]
    [InlineData(@"'ipam':{'ranges':[[{'subnet':'a'}],[{'subnet':'b'},{'rangeEnd':false}]]}", "ipam.ranges[1][1].rangeEnd")]
    [InlineData(@"'ipam':{'dataDir':{}}", "ipam.dataDir")]
    [InlineData(@"'runtimeConfig':{'ipRanges':[[{'gateway':[]}]]}", "runtimeConfig.ipRanges[0][0].gateway")]
    [InlineData(@"'runtimeConfig':{'ips':[true]}", "runtimeConfig.ips[0]")]
    [InlineData(@"'args':{'cni':{'ips':['10.0.0.2',2]}}", "args.cni.ips[1]")]
    [InlineData(@"'cni.dev/valid-attachments':[{'containerID':'c'},{'ifname':7}]", "cni.dev/valid-attachments[1].ifname")]
    [InlineData(@"'cni.dev/attachments':['c1']", "cni.dev/attachments[0]")]
    [InlineData(@"'capabilities':{'':1}", "capabilities.")]
    [InlineData(@"'logLevel':1,'mtu':'also wrong'", "logLevel")]
    public void The_first_wrong_type_is_named_by_its_path(string body, string key) => WrongType(body, key);

    [Fact]
    public void Details_say_what_was_expected_found_and_where()
    {
        var e = Throws(() => ParseAll(Utf8("{\"cniVersion\":\"1.0.0\",\n\"name\":\"n\",\n  \"mtu\": 1500.5}")));
        Assert.Equal("expected a 32-bit integer, found the number 1500.5 at line 3, column 10", e.Details);
        e = WrongType(@"'ipam':{'ranges':[{'subnet':'10.0.0.0/8'}]}", "ipam.ranges[0]");
        Assert.StartsWith("expected an array, found an object at line 1, column ", e.Details);
    }

    [Fact]
    public void A_syntax_error_wins_over_an_earlier_wrong_type()
    {
        var e = Throws(() => ParseAll(Config(@"'mtu':'x','ipam':{]")));
        Assert.Equal(CniErrorCode.DecodingFailure, e.Code);
    }

    // Text the reader cannot decode: the serializer reported it as the key's wrong type (code 7), not as bad JSON.

    [Fact]
    public void Undecodable_text_in_a_known_string_is_the_wrong_type()
    {
        WrongType(@"'bridge':'\ud800x'", "bridge");
        var json = Config(@"'logFile':'/var/log/pb-?.log'");
        json[Array.IndexOf(json, (byte)'?')] = 0xFF;
        var e = Throws(() => ParseAll(json));
        Assert.Equal("network config: logFile has the wrong type", e.Message);
        Assert.Contains("not valid UTF-8", e.Details);
    }

    [Fact]
    public void Undecodable_text_under_an_unknown_key_is_ignored()
    {
        var json = Config(@"'vendor':'?','v?':1,'mtu':1400");
        for (var i = Array.IndexOf(json, (byte)'?'); i >= 0; i = Array.IndexOf(json, (byte)'?')) json[i] = 0xFF;
        Assert.Equal(1400, ParseAll(json).Mtu);
    }

    [Fact]
    public void An_undecodable_capability_name_is_an_error_of_capabilities()
    {
        // The serializer named the previous key here ("capabilities.ips"); the map itself is the better answer.
        WrongType(@"'capabilities':{'ips':true,'\udc00':true}", "capabilities");
    }

    // For Every_declared_key_is_read_into_its_own_property. A key path skips list levels: "ipam.ranges.subnet".

    private static string ObjectJson(Type type, string path) => "{" + string.Join(",", KeyedProperties(type)
        .Where(p => path.Length > 0 || Key(p) is not ("cniVersion" or "name"))
        .Select(p => $"\"{Key(p)}\":{ValueJson(p.PropertyType, path + Key(p))}")) + "}";

    private static string ValueJson(Type type, string path)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string)) return $"\"{path}\"";
        if (type == typeof(bool)) return "true";
        if (type == typeof(int)) return IntFor(path).ToString();
        if (type == typeof(JsonElement) || type == typeof(Dictionary<string, bool>)) return $"{{\"{path}\":true}}";
        if (IsList(type)) return "[" + ValueJson(type.GetGenericArguments()[0], path) + "]";
        return ObjectJson(type, path + ".");
    }

    private static void AssertRead(object target, string path, List<string> checkedKeys)
    {
        foreach (var p in KeyedProperties(target.GetType()))
        {
            var key = path + Key(p);
            checkedKeys.Add(key);
            var value = p.GetValue(target);
            while (value is IList { Count: 1 } list) value = list[0];
            switch (value)
            {
                case string s when key is "cniVersion" or "name": Assert.NotEmpty(s); break;
                case string s: Assert.Equal(key, s); break;
                case bool b: Assert.True(b, $"{key} was not read"); break;
                case int i: Assert.Equal(IntFor(key), i); break;
                case JsonElement e: Assert.True(e.GetProperty(key).GetBoolean()); break;
                case Dictionary<string, bool> d: Assert.True(d[key]); break;
                case null or IList: Assert.Fail($"{key} was not read"); break;
                default: AssertRead(value, key + ".", checkedKeys); break;
            }
        }
    }

    private static int IntFor(string path) => path.Sum(c => c);

    private static int CountKeys(Type type) => KeyedProperties(type).Sum(p =>
    {
        var t = p.PropertyType;
        while (IsList(t)) t = t.GetGenericArguments()[0];
        return 1 + (t.Namespace?.StartsWith("PodBridge", StringComparison.Ordinal) == true ? CountKeys(t) : 0);
    });

    private static bool IsList(Type t) => t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>);

    private static string Key(PropertyInfo p) => p.GetCustomAttribute<JsonPropertyNameAttribute>()!.Name;

    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "Unit tests run under the JIT, untrimmed.")]
    private static IEnumerable<PropertyInfo> KeyedProperties(Type type) =>
        type.GetProperties().Where(p => p.GetCustomAttribute<JsonPropertyNameAttribute>() is not null);
}
