using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace PodBridge.Cni;

/// <summary>
/// The one JSON reader behind every config schema of podbridge: the common keys (<see cref="NetConfReader"/>), the
/// bridge plugin's keys and the IPAM section each read the same stdin bytes with it, in one forward pass of a
/// <see cref="Utf8JsonReader"/> per schema. It replaces the source-generated serializer, whose metadata set-up
/// (converters, attribute scans, for every nested type) is paid once per process, and the plugin is one process per
/// verb.
/// The rules are the ones the serializer applied with strict number handling: keys are case-sensitive, unknown
/// keys are skipped at any depth, the last of duplicate keys wins (an object is replaced, not merged), JSON null
/// leaves a reference or nullable property null but is the wrong type for a bool, an int takes only an integer
/// literal in range, and a known key of the wrong type is code 7 naming its path ("ipam.ranges[0][1].subnet").
/// </summary>
/// <remarks>
/// The input must already be one well-formed JSON object (<see cref="NetConf.Parse"/> checks that first, so a
/// syntax error stays code 6 even when a type error comes earlier in the text).
/// Convention: every ReadX starts on the value's first token and ends on its last one; a key reader either takes
/// the key (<see cref="Key"/> then one ReadX) or calls <see cref="Skip"/>.
/// </remarks>
public ref struct ConfigReader
{
    private Utf8JsonReader _json;
    private readonly ReadOnlySpan<byte> _utf8;
    // The keys and indexes from the root to the value being read; turned into text only for an error message.
    private Path _path;
    private int _depth;

    private ConfigReader(ReadOnlySpan<byte> utf8)
    {
        _utf8 = utf8;
        _json = new Utf8JsonReader(utf8);
    }

    /// <summary>Reads the root object of <paramref name="utf8"/> into <paramref name="target"/>, key by key.</summary>
    public static T Read<T>(ReadOnlySpan<byte> utf8, T target, KeyReader<T> readKey) where T : class
    {
        var r = new ConfigReader(utf8);
        r._json.Read();
        return r.ReadObject(target, readKey)!;
    }

    // Readers, one per JSON shape.

    public delegate void KeyReader<T>(ref ConfigReader r, T target);
    public delegate T ValueReader<T>(ref ConfigReader r);

    /// <summary>On a property name: true and moved onto its value when it is <paramref name="name"/>.</summary>
    public bool Key(ReadOnlySpan<byte> name)
    {
        // ValueTextEquals unescapes, so "m\u0074u" is still mtu.
        if (!_json.ValueTextEquals(name)) return false;
        _json.Read();
        return true;
    }

    /// <summary>On a property name: skips its value, whatever it is.</summary>
    public void Skip() => _json.Skip();

    public string? ReadString()
    {
        if (_json.TokenType == JsonTokenType.Null) return null;
        if (_json.TokenType != JsonTokenType.String) throw WrongType("a string");
        return Text("a string");
    }

    public bool ReadBool() => _json.TokenType switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False => false,
        _ => throw WrongType("true or false"),
    };

    public int? ReadInt()
    {
        if (_json.TokenType == JsonTokenType.Null) return null;
        // TryGetInt32 takes integer literals only: 1500.0, 1e3 and "1500" are errors, as with strict numbers.
        if (_json.TokenType == JsonTokenType.Number && _json.TryGetInt32(out var value)) return value;
        throw WrongType("a 32-bit integer");
    }

    public JsonElement? ReadElement() =>
        _json.TokenType == JsonTokenType.Null ? null : JsonElement.ParseValue(ref _json);

    public List<string>? ReadStringList() => ReadList(static (ref r) => r.ReadString()!);

    public T? ReadObject<T>(T target, KeyReader<T> readKey) where T : class
    {
        if (_json.TokenType == JsonTokenType.Null) return null;
        if (_json.TokenType != JsonTokenType.StartObject) throw WrongType("an object");
        while (_json.Read() && _json.TokenType == JsonTokenType.PropertyName)
        {
            EnterKey();
            readKey(ref this, target);
            Leave();
        }
        return target;
    }

    public List<T>? ReadList<T>(ValueReader<T> readElement)
    {
        if (_json.TokenType == JsonTokenType.Null) return null;
        if (_json.TokenType != JsonTokenType.StartArray) throw WrongType("an array");
        var list = new List<T>();
        while (_json.Read() && _json.TokenType != JsonTokenType.EndArray)
        {
            EnterIndex(list.Count);
            list.Add(readElement(ref this));
            Leave();
        }
        return list;
    }

    /// <summary>An object of booleans under any keys (capabilities).</summary>
    public Dictionary<string, bool>? ReadBoolMap()
    {
        if (_json.TokenType == JsonTokenType.Null) return null;
        if (_json.TokenType != JsonTokenType.StartObject) throw WrongType("an object");
        var map = new Dictionary<string, bool>();
        while (_json.Read() && _json.TokenType == JsonTokenType.PropertyName)
        {
            // Decoded before entering the key: an undecodable key is an error of the map itself.
            var key = Text("a text key");
            EnterKey();
            _json.Read();
            map[key] = ReadBool();
            Leave();
        }
        return map;
    }

    /// <summary>The current string or key; invalid UTF-8 or an unpaired surrogate escape is the wrong type.</summary>
    private string Text(string expected)
    {
        try
        {
            return _json.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw WrongType(expected, "text that is not valid UTF-8 or has an unpaired \\u surrogate");
        }
    }

    // Error path: built only here, when a message is needed.

    // The deepest key read is runtimeConfig.ipRanges[i][j].subnet (5); deeper JSON is only ever skipped.
    private const int MaxPathDepth = 8;

    /// <summary>A key (where its name starts in the input) or, when KeyStart is -1, a list index.</summary>
    private readonly record struct Segment(int KeyStart, int Index);

    [InlineArray(MaxPathDepth)]
    private struct Path { private Segment _first; }

    /// <summary>On a property name: it becomes the last step of the path.</summary>
    private void EnterKey() => _path[_depth++] = new Segment((int)_json.TokenStartIndex, -1);
    private void EnterIndex(int index) => _path[_depth++] = new Segment(-1, index);
    private void Leave() => _depth--;

    private CniException WrongType(string expected, string? found = null)
    {
        var start = (int)_json.TokenStartIndex;
        var before = _utf8[..start];
        var line = before.Count((byte)'\n') + 1;
        var column = start - before.LastIndexOf((byte)'\n');
        return new CniException(CniErrorCode.InvalidNetworkConfig,
            $"network config: {PathText()} has the wrong type",
            $"expected {expected}, found {found ?? Found()} at line {line}, column {column}");
    }

    private readonly string Found() => _json.TokenType switch
    {
        JsonTokenType.String or JsonTokenType.PropertyName => "a string",
        JsonTokenType.Number => $"the number {Encoding.UTF8.GetString(_json.ValueSpan)}",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        var other => other.ToString(),
    };

    /// <summary>"ipam.ranges[0][1].subnet", "cni.dev/attachments[0].containerID".</summary>
    private readonly string PathText()
    {
        var text = new StringBuilder();
        for (var i = 0; i < _depth; i++)
        {
            var segment = _path[i];
            if (segment.KeyStart < 0)
            {
                text.Append('[').Append(segment.Index).Append(']');
                continue;
            }
            if (text.Length > 0) text.Append('.');
            // A fresh reader at the key's opening quote sees it as a string token; every key on the path was
            // decoded once already, so this cannot fail.
            var key = new Utf8JsonReader(_utf8[segment.KeyStart..]);
            key.Read();
            text.Append(key.GetString());
        }
        return text.ToString();
    }
}
