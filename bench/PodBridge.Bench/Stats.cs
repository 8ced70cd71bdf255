namespace PodBridge.Bench;

internal sealed record Summary(int Count, double Median, double P90, double Min, double Max, double Mean)
{
    public static Summary? Of(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0) return null;
        return new Summary(sorted.Length, Percentile(sorted, 0.5), Percentile(sorted, 0.9),
            sorted[0], sorted[^1], sorted.Average());
    }

    /// <summary>Linear interpolation between closest ranks (the common "type 7" definition).</summary>
    private static double Percentile(double[] sorted, double p)
    {
        double rank = p * (sorted.Length - 1);
        int lo = (int)Math.Floor(rank);
        int hi = (int)Math.Ceiling(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }
}

/// <summary>Scenario names under which samples are recorded.</summary>
internal static class Scenario
{
    public const string Add = "ADD";
    public const string Check = "CHECK";
    public const string Del = "DEL";
    public const string Version = "VERSION";
    public const string BurstAdd = "burst ADD";
    public const string BurstDel = "burst DEL";
    public const string AddEmpty = "ADD empty pool";
    public const string AddSeeded = "ADD seeded pool";
    public const string DelEmpty = "DEL empty pool";
    public const string DelSeeded = "DEL seeded pool";
    public const string BurstAddMakespan = "burst ADD makespan";
    public const string BurstDelMakespan = "burst DEL makespan";
}

/// <summary>Thread-safe sample store: (plugin label, scenario) → invocations, plus makespans.</summary>
internal sealed class Recorder
{
    private readonly Dictionary<(string Plugin, string Scenario), List<Invocation>> _invocations = [];
    private readonly Dictionary<(string Plugin, string Scenario), List<double>> _makespansMs = [];
    private readonly object _gate = new();

    public void Add(string plugin, string scenario, Invocation invocation)
    {
        lock (_gate)
        {
            if (!_invocations.TryGetValue((plugin, scenario), out var list))
                _invocations[(plugin, scenario)] = list = [];
            list.Add(invocation);
        }
    }

    public void AddMakespan(string plugin, string scenario, double ms)
    {
        lock (_gate)
        {
            if (!_makespansMs.TryGetValue((plugin, scenario), out var list))
                _makespansMs[(plugin, scenario)] = list = [];
            list.Add(ms);
        }
    }

    public IReadOnlyList<Invocation> Invocations(string plugin, string scenario)
    {
        lock (_gate)
            return _invocations.TryGetValue((plugin, scenario), out var l) ? l.ToArray() : [];
    }

    public IReadOnlyList<Invocation> AllInvocations(string plugin)
    {
        lock (_gate)
            return _invocations.Where(kv => kv.Key.Plugin == plugin).SelectMany(kv => kv.Value).ToArray();
    }

    public IReadOnlyList<double> Makespans(string plugin, string scenario)
    {
        lock (_gate)
            return _makespansMs.TryGetValue((plugin, scenario), out var l) ? l.ToArray() : [];
    }

    public Summary? Wall(string plugin, string scenario) => Summary.Of(Invocations(plugin, scenario).Select(i => i.WallMs));

    public Summary? Cpu(string plugin, string scenario) => Summary.Of(Invocations(plugin, scenario).Select(i => i.CpuMs));

    public Summary? Rss(string plugin, string scenario) => Summary.Of(Invocations(plugin, scenario).Select(i => (double)i.MaxRssKiB));

    public IEnumerable<string> Scenarios(string plugin)
    {
        lock (_gate)
            return _invocations.Keys.Where(k => k.Plugin == plugin).Select(k => k.Scenario).ToArray();
    }
}
