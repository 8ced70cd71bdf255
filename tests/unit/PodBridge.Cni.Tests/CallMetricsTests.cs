using System.Text;
using PodBridge.Cni;
using Xunit;

namespace PodBridge.Cni.Tests;

public class CallMetricsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pbmetrics").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Lines_are_counted_per_series_with_sums_and_buckets_and_malformed_lines_are_skipped()
    {
        var text = string.Join("\n",
            "podbridge net1 ADD 0 4000",        // <= 5 ms bucket
            "podbridge net1 ADD 0 30000",       // <= 50 ms
            "podbridge net1 DEL 0 1000",
            "podbridge-ipam - ADD 102 20000",
            "podbridge nët ADD 0 7000",         // UTF-8 network name
            "podbridge net1 ADD 0",             // 4 fields
            "podbridge net1 ADD x 10",          // code not a number
            "podbridge net1  ADD 0 10",         // empty field
            "podbridge net1 ADD 0 10 extra",    // 6 fields
            "",
            "podbridge net1 ADD 0 12");         // torn last line without newline still counts when whole
        var series = CallMetrics.CountLines(Encoding.UTF8.GetBytes(text));
        Assert.Equal(["podbridge net1 ADD 0", "podbridge net1 DEL 0", "podbridge nët ADD 0", "podbridge-ipam - ADD 102"],
            series.Keys.Order(StringComparer.Ordinal));
        var add = series["podbridge net1 ADD 0"];
        Assert.Equal(3, add.Count);
        Assert.Equal(34012, add.SumMicros);
        Assert.Equal(2, add.BucketCounts[0]);   // le 0.005
        Assert.Equal(2, add.BucketCounts[1]);   // le 0.01
        Assert.Equal(3, add.BucketCounts[3]);   // le 0.05
        Assert.Equal(1, series["podbridge-ipam - ADD 102"].Count);
    }

    [Fact]
    public void A_fold_adds_the_calls_to_the_totals_and_empties_the_calls_file()
    {
        var calls = Path.Combine(_dir, "calls");
        File.WriteAllText(calls, "podbridge n ADD 0 1000\npodbridge n ADD 0 3000\n");
        var first = CallMetrics.Fold(_dir);
        Assert.Equal(2, first[("podbridge", "n", "ADD", 0)].Count);
        Assert.Equal(0, new FileInfo(calls).Length);

        File.WriteAllText(calls, "podbridge n ADD 0 5000\npodbridge n DEL 0 9000\n");
        var second = CallMetrics.Fold(_dir);
        Assert.Equal(3, second[("podbridge", "n", "ADD", 0)].Count);
        Assert.Equal(9000, second[("podbridge", "n", "ADD", 0)].SumMicros);
        Assert.Equal(1, second[("podbridge", "n", "DEL", 0)].Count);
    }
}
