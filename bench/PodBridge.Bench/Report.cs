using System.Globalization;
using System.Text;
using System.Text.Json;

namespace PodBridge.Bench;

/// <summary>
/// Where a row's target applies: to podbridge ÷ reference, or to podbridge's own value
/// (the seeded-pool rows, whose values already are ratios).
/// </summary>
internal enum TargetOn { None, Ratio, PodbridgeValue }

internal sealed record Row(string Figure, string Unit, double? Podbridge, double? Reference, double? Target = null, TargetOn On = TargetOn.None)
{
    // A row whose values already are ratios (seeded ÷ empty) gets no ratio of ratios.
    public double? Ratio => Unit != "×" && Podbridge is { } p && Reference is { } r && r > 0 ? p / r : null;

    public bool? Met => On switch
    {
        TargetOn.Ratio => Ratio is { } x ? x <= Target : null,
        TargetOn.PodbridgeValue => Podbridge is { } v ? v <= Target : null,
        _ => null,
    };

    public string TargetText => On switch
    {
        TargetOn.Ratio => $"≤ {Target:0.0#}× reference",
        TargetOn.PodbridgeValue => $"≤ {Target:0.0#}× (podbridge)",
        _ => "",
    };

    public string MetText => Met switch { true => "met", false => "NOT met", null => On == TargetOn.None ? "" : "n/a" };
}

internal sealed record MachineInfo(string Date, string Kernel, string Cpu, int Cores, string ReferenceVersion, string PodbridgeCommit)
{
    public static MachineInfo Collect(string binDir)
    {
        string kernel = ReadTrim("/proc/sys/kernel/osrelease");
        string cpu = File.ReadLines("/proc/cpuinfo")
            .FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        string refVersion = Tool.TryRun("dpkg-query", ["-W", "-f", "${Version}", "containernetworking-plugins"])?.Trim() ?? "unknown";
        string commit = Tool.TryRun("git", ["-C", RepoPaths.Root, "-c", "safe.directory=*", "rev-parse", "--short", "HEAD"])?.Trim() ?? "unknown";
        // The binaries may be newer than the commit (published from a dirty tree): say when they were built.
        var binary = Path.Combine(binDir, "podbridge");
        if (File.Exists(binary))
            commit += $", binary built {File.GetLastWriteTimeUtc(binary).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)}";
        return new MachineInfo(DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            kernel, cpu, Environment.ProcessorCount, $"containernetworking-plugins {refVersion}", commit);
    }

    private static string ReadTrim(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : "unknown";
}

internal sealed class Report(BenchOptions options, Recorder recorder, MachineInfo machine, IReadOnlyList<string> notes, long? serverRssKiB = null)
{
    private const string Pb = PluginUnderTest.PodbridgeLabel;
    private const string Warm = PluginUnderTest.WarmLabel;
    private const string Ref = PluginUnderTest.ReferenceLabel;
    private const string Logged = PluginUnderTest.LoggedLabel;

    public IReadOnlyList<Row> Rows { get; } = BuildRows(options, recorder, serverRssKiB);

    private static List<Row> BuildRows(BenchOptions o, Recorder rec, long? serverRssKiB)
    {
        var rows = new List<Row>();
        Summary? W(string plugin, string scenario) => rec.Wall(plugin, scenario);

        void Latency(string verb, string scenario, double target)
        {
            var p = W(Pb, scenario);
            var r = W(Ref, scenario);
            rows.Add(new Row($"{verb} median", "ms", p?.Median, r?.Median, target, TargetOn.Ratio));
            rows.Add(new Row($"{verb} p90", "ms", p?.P90, r?.P90));
            rows.Add(new Row($"{verb} min", "ms", p?.Min, r?.Min));
            rows.Add(new Row($"{verb} max", "ms", p?.Max, r?.Max));
        }
        Latency("ADD", Scenario.Add, 0.75);
        Latency("CHECK", Scenario.Check, 0.75);
        Latency("DEL", Scenario.Del, 1.0);
        rows.Add(new Row("VERSION median", "ms", W(Pb, Scenario.Version)?.Median, W(Ref, Scenario.Version)?.Median));
        rows.Add(new Row("CPU user+sys, VERSION median", "ms", rec.Cpu(Pb, Scenario.Version)?.Median, rec.Cpu(Ref, Scenario.Version)?.Median, 1.0, TargetOn.Ratio));

        double? Makespan(string plugin, string scenario) => Summary.Of(rec.Makespans(plugin, scenario).Select(ms => ms / 1000))?.Median;
        double? BurstTotal(string plugin) => Makespan(plugin, Scenario.BurstAddMakespan) + Makespan(plugin, Scenario.BurstDelMakespan);
        string burst = $"burst {o.Burst} pods {o.Width}-wide";
        rows.Add(new Row($"{burst}: ADD+DEL makespan", "s", BurstTotal(Pb), BurstTotal(Ref), 0.8, TargetOn.Ratio));
        rows.Add(new Row($"{burst}: ADD makespan", "s", Makespan(Pb, Scenario.BurstAddMakespan), Makespan(Ref, Scenario.BurstAddMakespan)));
        rows.Add(new Row($"{burst}: DEL makespan", "s", Makespan(Pb, Scenario.BurstDelMakespan), Makespan(Ref, Scenario.BurstDelMakespan)));
        rows.Add(new Row($"{burst}: ADD latency median", "ms", W(Pb, Scenario.BurstAdd)?.Median, W(Ref, Scenario.BurstAdd)?.Median));
        rows.Add(new Row($"{burst}: ADD latency p90", "ms", W(Pb, Scenario.BurstAdd)?.P90, W(Ref, Scenario.BurstAdd)?.P90));
        rows.Add(new Row($"{burst}: DEL latency median", "ms", W(Pb, Scenario.BurstDel)?.Median, W(Ref, Scenario.BurstDel)?.Median));

        string seeded = $"{o.SeedLeases} leases";
        double? Div(double? a, double? b) => a is { } x && b is { } y && y > 0 ? x / y : null;
        rows.Add(new Row("ADD median, empty /16", "ms", W(Pb, Scenario.AddEmpty)?.Median, W(Ref, Scenario.AddEmpty)?.Median));
        rows.Add(new Row($"ADD median, /16 with {seeded}", "ms", W(Pb, Scenario.AddSeeded)?.Median, W(Ref, Scenario.AddSeeded)?.Median));
        rows.Add(new Row($"ADD {seeded} ÷ ADD empty", "×",
            Div(W(Pb, Scenario.AddSeeded)?.Median, W(Pb, Scenario.AddEmpty)?.Median),
            Div(W(Ref, Scenario.AddSeeded)?.Median, W(Ref, Scenario.AddEmpty)?.Median), 1.2, TargetOn.PodbridgeValue));
        rows.Add(new Row("DEL median, empty /16", "ms", W(Pb, Scenario.DelEmpty)?.Median, W(Ref, Scenario.DelEmpty)?.Median));
        rows.Add(new Row($"DEL median, /16 with {seeded}", "ms", W(Pb, Scenario.DelSeeded)?.Median, W(Ref, Scenario.DelSeeded)?.Median));
        rows.Add(new Row($"DEL {seeded} ÷ DEL empty", "×",
            Div(W(Pb, Scenario.DelSeeded)?.Median, W(Pb, Scenario.DelEmpty)?.Median),
            Div(W(Ref, Scenario.DelSeeded)?.Median, W(Ref, Scenario.DelEmpty)?.Median)));

        // The target row is the everyday peak (empty-ish pool, sequential and burst); the seeded pool, where
        // host-local's full directory walk inflates its RSS, is shown separately so it cannot flatter either side.
        double? Rss(string plugin, params string[] scenarios) =>
            scenarios.SelectMany(s => rec.Invocations(plugin, s)).ToList() is { Count: > 0 } l ? l.Max(i => i.MaxRssKiB) / 1024.0 : null;
        string[] everyday = [Scenario.Add, Scenario.Check, Scenario.Del, Scenario.BurstAdd, Scenario.BurstDel];
        rows.Add(new Row("peak RSS, ADD/CHECK/DEL sequential + burst", "MiB", Rss(Pb, everyday), Rss(Ref, everyday), 1.5, TargetOn.Ratio));
        rows.Add(new Row($"peak RSS, /16 with {seeded}", "MiB", Rss(Pb, Scenario.AddSeeded, Scenario.DelSeeded), Rss(Ref, Scenario.AddSeeded, Scenario.DelSeeded)));
        rows.Add(new Row("peak RSS, ADD median", "MiB", rec.Rss(Pb, Scenario.Add)?.Median / 1024, rec.Rss(Ref, Scenario.Add)?.Median / 1024));
        rows.Add(new Row("CPU user+sys, ADD median", "ms", rec.Cpu(Pb, Scenario.Add)?.Median, rec.Cpu(Ref, Scenario.Add)?.Median));
        rows.Add(new Row("CPU user+sys, CHECK median", "ms", rec.Cpu(Pb, Scenario.Check)?.Median, rec.Cpu(Ref, Scenario.Check)?.Median));
        rows.Add(new Row("CPU user+sys, DEL median", "ms", rec.Cpu(Pb, Scenario.Del)?.Median, rec.Cpu(Ref, Scenario.Del)?.Median));

        // What an operator's JSON log costs: the same binary with logFile + logFormat json (call counting is on in
        // every podbridge row, so its cost is already inside them).
        if (o.RunPodbridge && o.Logged)
        {
            rows.Add(new Row("json log: ADD median", "ms", W(Logged, Scenario.Add)?.Median, W(Ref, Scenario.Add)?.Median));
            rows.Add(new Row("json log on ÷ off: ADD median", "×", Div(W(Logged, Scenario.Add)?.Median, W(Pb, Scenario.Add)?.Median), null));
            rows.Add(new Row("json log on ÷ off: CPU user+sys, ADD median", "×", Div(rec.Cpu(Logged, Scenario.Add)?.Median, rec.Cpu(Pb, Scenario.Add)?.Median), null));
        }

        // The warm IPAM: the same plugin binary with `podbridge-ipam serve` answering its IPAM on the data dir.
        if (o.RunPodbridge && o.Warm)
        {
            rows.Add(new Row("warm: ADD median", "ms", W(Warm, Scenario.Add)?.Median, W(Ref, Scenario.Add)?.Median, 0.45, TargetOn.Ratio));
            rows.Add(new Row("warm: CHECK median", "ms", W(Warm, Scenario.Check)?.Median, W(Ref, Scenario.Check)?.Median, 0.45, TargetOn.Ratio));
            rows.Add(new Row("warm: DEL median", "ms", W(Warm, Scenario.Del)?.Median, W(Ref, Scenario.Del)?.Median));
            rows.Add(new Row("warm: ADD p90", "ms", W(Warm, Scenario.Add)?.P90, W(Ref, Scenario.Add)?.P90));
            rows.Add(new Row($"warm: {burst}: ADD+DEL makespan", "s", BurstTotal(Warm), BurstTotal(Ref)));
            rows.Add(new Row("warm: peak RSS, plugin processes", "MiB", Rss(Warm, everyday), Rss(Ref, everyday)));
            rows.Add(new Row("warm: CPU user+sys, ADD median (plugin process)", "ms", rec.Cpu(Warm, Scenario.Add)?.Median, rec.Cpu(Ref, Scenario.Add)?.Median));
            rows.Add(new Row("warm: CPU user+sys, CHECK median (plugin process)", "ms", rec.Cpu(Warm, Scenario.Check)?.Median, rec.Cpu(Ref, Scenario.Check)?.Median));
            rows.Add(new Row("warm: the server's own peak RSS (resident)", "MiB", serverRssKiB / 1024.0, null));
        }

        static long Bytes(string f) => (new FileInfo(f).ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? new FileInfo(f)).Length;
        double? Size(IEnumerable<string> files) => files.All(File.Exists) ? files.Sum(Bytes) / 1048576.0 : null;
        var pbBins = new[] { Path.Combine(o.BinDir, "podbridge") };
        var refBins = new[] { Path.Combine(o.CniDir, "bridge"), Path.Combine(o.CniDir, "host-local") };
        rows.Add(new Row("binaries for this config (podbridge vs bridge+host-local)", "MiB",
            o.RunPodbridge ? Size(pbBins) : null, o.RunReference ? Size(refBins) : null));
        rows.Add(new Row("podbridge-ipam (standalone IPAM) vs host-local", "MiB",
            o.RunPodbridge ? Size([Path.Combine(o.BinDir, "podbridge-ipam")]) : null,
            o.RunReference ? Size([Path.Combine(o.CniDir, "host-local")]) : null));
        return rows;
    }

    private static string Num(double? v) => v switch
    {
        null => "–",
        >= 100 => v.Value.ToString("F0", CultureInfo.InvariantCulture),
        >= 10 => v.Value.ToString("F1", CultureInfo.InvariantCulture),
        _ => v.Value.ToString("F2", CultureInfo.InvariantCulture),
    };

    private static string RatioText(double? v) => v is { } x ? x.ToString("F2", CultureInfo.InvariantCulture) + "×" : "–";

    private string[] Header => ["figure", "unit", Pb, Ref, "podbridge/reference", "target", "met"];

    private IEnumerable<string[]> Cells => Rows.Select(r => new[]
    {
        r.Figure, r.Unit, Num(r.Podbridge), Num(r.Reference), RatioText(r.Ratio), r.TargetText, r.MetText,
    });

    private string Context =>
        $"{machine.Date} · kernel {machine.Kernel} · {machine.Cpu} · {machine.Cores} cores · " +
        $"{(options.Smoke ? "SMOKE (timings meaningless)" : "full")} run · {options.Pods} pods, burst {options.Burst}×{options.Width}, " +
        $"{options.BurstRounds} burst round(s), {options.SeedLeases} seeded leases, {options.SeedPods} seeded-pool pods · " +
        $"reference: {machine.ReferenceVersion} · podbridge commit {machine.PodbridgeCommit}";

    public string ConsoleTable()
    {
        var all = new[] { Header }.Concat(Cells).ToList();
        var widths = Enumerable.Range(0, Header.Length).Select(c => all.Max(r => r[c].Length)).ToArray();
        var sb = new StringBuilder();
        sb.AppendLine(Context);
        foreach (var (row, i) in all.Select((r, i) => (r, i)))
        {
            sb.AppendLine(string.Join("  ", row.Select((cell, c) => c is 0 or 1 or 5 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd());
            if (i == 0) sb.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        }
        foreach (var n in notes) sb.AppendLine($"note: {n}");
        return sb.ToString();
    }

    public string Markdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("# podbridge vs reference bridge + host-local");
        sb.AppendLine();
        sb.AppendLine(Context);
        sb.AppendLine();
        sb.AppendLine("Wall time is per plugin process, spawn to exit. Ratio < 1 means podbridge is faster / smaller.");
        sb.AppendLine();
        sb.AppendLine("| " + string.Join(" | ", Header) + " |");
        sb.AppendLine("|" + string.Join("|", Header.Select((_, c) => c is 0 or 1 or 5 or 6 ? "---" : "---:")) + "|");
        foreach (var row in Cells)
            sb.AppendLine("| " + string.Join(" | ", row) + " |");
        if (notes.Count > 0)
        {
            sb.AppendLine();
            foreach (var n in notes) sb.AppendLine($"- {n}");
        }
        return sb.ToString();
    }

    public byte[] Json()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("date", machine.Date);
            w.WriteString("kernel", machine.Kernel);
            w.WriteString("cpu", machine.Cpu);
            w.WriteNumber("cores", machine.Cores);
            w.WriteString("reference", machine.ReferenceVersion);
            w.WriteString("podbridgeCommit", machine.PodbridgeCommit);
            w.WriteString("mode", options.Smoke ? "smoke" : "full");
            w.WriteStartObject("settings");
            w.WriteNumber("pods", options.Pods);
            w.WriteNumber("burst", options.Burst);
            w.WriteNumber("width", options.Width);
            w.WriteNumber("burstRounds", options.BurstRounds);
            w.WriteNumber("seedLeases", options.SeedLeases);
            w.WriteNumber("seedPods", options.SeedPods);
            w.WriteNumber("warmup", options.Warmup);
            w.WriteString("binDir", options.BinDir);
            w.WriteString("cniDir", options.CniDir);
            w.WriteString("only", options.Only.ToString().ToLowerInvariant());
            w.WriteEndObject();

            w.WriteStartArray("figures");
            foreach (var r in Rows)
            {
                w.WriteStartObject();
                w.WriteString("figure", r.Figure);
                w.WriteString("unit", r.Unit);
                WriteNullable(w, Pb, r.Podbridge);
                WriteNullable(w, Ref, r.Reference);
                WriteNullable(w, "ratio", r.Ratio);
                if (r.On != TargetOn.None)
                {
                    w.WriteNumber("target", r.Target!.Value);
                    w.WriteString("targetOn", r.On == TargetOn.Ratio ? "podbridge/reference" : "podbridge");
                    if (r.Met is { } met) w.WriteBoolean("met", met); else w.WriteNull("met");
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartObject("scenarios");
            foreach (var plugin in new[] { Pb, Ref })
            {
                w.WriteStartObject(plugin);
                foreach (var scenario in recorder.Scenarios(plugin).Order())
                {
                    w.WriteStartObject(scenario);
                    WriteSummary(w, "wallMs", recorder.Wall(plugin, scenario));
                    WriteSummary(w, "cpuMs", recorder.Cpu(plugin, scenario));
                    WriteSummary(w, "maxRssKiB", recorder.Rss(plugin, scenario));
                    w.WriteEndObject();
                }
                foreach (var scenario in new[] { Scenario.BurstAddMakespan, Scenario.BurstDelMakespan })
                {
                    var spans = recorder.Makespans(plugin, scenario);
                    if (spans.Count == 0) continue;
                    w.WriteStartArray(scenario + " ms");
                    foreach (var s in spans) w.WriteNumberValue(Math.Round(s, 3));
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndObject();

            w.WriteStartArray("notes");
            foreach (var n in notes) w.WriteStringValue(n);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, double? v)
    {
        if (v is { } x) w.WriteNumber(name, Math.Round(x, 4));
        else w.WriteNull(name);
    }

    private static void WriteSummary(Utf8JsonWriter w, string name, Summary? s)
    {
        if (s is null) return;
        w.WriteStartObject(name);
        w.WriteNumber("count", s.Count);
        w.WriteNumber("median", Math.Round(s.Median, 3));
        w.WriteNumber("p90", Math.Round(s.P90, 3));
        w.WriteNumber("min", Math.Round(s.Min, 3));
        w.WriteNumber("max", Math.Round(s.Max, 3));
        w.WriteNumber("mean", Math.Round(s.Mean, 3));
        w.WriteEndObject();
    }
}
