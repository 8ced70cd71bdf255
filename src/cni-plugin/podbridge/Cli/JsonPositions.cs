using System.Text.Json;

namespace PodBridge.Plugin.Cli;

/// <summary>Line and column (1-based) of every value of a JSON document by its path ("plugins[0].ipam.ranges[1][0].rangeEnd").</summary>
internal sealed class JsonPositions
{
    private readonly Dictionary<string, (int Line, int Column)> _at = new(StringComparer.Ordinal);

    /// <summary>The position of the path, else of its nearest ancestor present in the document, else 1:1.</summary>
    public (int Line, int Column) Find(string path)
    {
        while (true)
        {
            if (_at.TryGetValue(path, out var p)) return p;
            if (path.Length == 0) return (1, 1);
            var cut = Math.Max(path.LastIndexOf('.'), path.LastIndexOf('['));
            path = cut < 0 ? "" : path[..cut];
        }
    }

    public static JsonPositions Map(byte[] utf8)
    {
        var map = new JsonPositions();
        var lineStarts = new List<int> { 0 };
        for (var i = 0; i < utf8.Length; i++)
            if (utf8[i] == '\n') lineStarts.Add(i + 1);
        (int, int) Position(long offset)
        {
            var line = lineStarts.BinarySearch((int)offset);
            if (line < 0) line = ~line - 1;
            return (line + 1, (int)offset - lineStarts[line] + 1);
        }

        // The path of the container being read, and for arrays the next index.
        var stack = new Stack<(string Path, int NextIndex, bool IsArray)>();
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        string? pendingKey = null;
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.PropertyName)
                {
                    pendingKey = reader.GetString();
                    continue;
                }
                if (reader.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray)
                {
                    stack.Pop();
                    continue;
                }
                string path;
                if (stack.Count == 0) path = "";
                else if (stack.Peek().IsArray)
                {
                    var top = stack.Pop();
                    path = $"{top.Path}[{top.NextIndex}]";
                    stack.Push(top with { NextIndex = top.NextIndex + 1 });
                }
                else
                {
                    var parent = stack.Peek().Path;
                    path = parent.Length == 0 ? pendingKey ?? "" : $"{parent}.{pendingKey}";
                }
                map._at[path] = Position(reader.TokenStartIndex); // the last of duplicate keys wins, as in ADD
                if (reader.TokenType == JsonTokenType.StartObject) stack.Push((path, 0, false));
                else if (reader.TokenType == JsonTokenType.StartArray) stack.Push((path, 0, true));
            }
        }
        catch (JsonException) { }
        return map;
    }
}
