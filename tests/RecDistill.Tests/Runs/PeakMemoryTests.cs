using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using RecDistill.Models;
using RecDistill.Runs;

namespace RecDistill.Tests.Runs;

/// <summary>Alone: the process's resident peak would include what tests running beside it allocate.</summary>
[CollectionDefinition(nameof(PeakMemoryTests), DisableParallelization = true)]
public sealed class PeakMemoryCollection;

[Collection(nameof(PeakMemoryTests))]
public class PeakMemoryTests
{
    [Fact]
    public void The_peak_follows_a_large_allocation_and_restarts_below_it()
    {
        if (!OperatingSystem.IsLinux()) return; // measured on Linux only; elsewhere runs record no figure
        Assert.True(PeakMemory.Restart());
        double before = PeakMemory.Megabytes()!.Value;
        const int size = 256 << 20;
        var block = Marshal.AllocHGlobal(size);
        double peak;
        try
        {
            // Touch every page so that it becomes resident.
            for (int offset = 0; offset < size; offset += 4096) Marshal.WriteByte(block, offset, 1);
            peak = PeakMemory.Megabytes()!.Value;
        }
        finally
        {
            Marshal.FreeHGlobal(block);
        }
        Assert.True(peak >= before + 200, $"peak {peak:F0} MiB after touching 256 MiB on {before:F0} MiB");
        Assert.True(PeakMemory.Restart());
        Assert.True(PeakMemory.Megabytes()!.Value < peak - 100, "the restarted peak no longer holds the freed block");
    }

    [Fact]
    public void A_run_records_its_peak_and_the_comparison_reports_it()
    {
        var dir = Path.Combine(TestData.TempDir(), "run");
        Workflow.Train(TestData.TinySynthetic(3), new ModelShape(Backbone.Bpr, 8), TestData.ShortTraining(1), new RunOutput(dir));
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunDirectory.MetricsFile)))!;
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(metrics["peak_memory_mb"]);
            return;
        }
        double mb = (double)metrics["peak_memory_mb"]!;
        Assert.InRange(mb, 10, 64 * 1024);
        var summary = RunSummary.FromRunDirectory(dir, RunSummary.TeacherMethod, 0);
        Assert.Equal(mb, summary.PeakMemoryMb);
        var outDir = Path.Combine(TestData.TempDir(), "report");
        var md = ComparisonReport.Write(outDir, "t", new[] { summary, summary with { Method = "scratch", SeedIndex = 1, PeakMemoryMb = mb + 5 } },
            new[] { "scratch" }, Array.Empty<string>());
        Assert.Contains("peak MiB (max)", md);
        Assert.Contains(FormattableString.Invariant($"Training time of the 2 runs above: {2 * summary.TrainSeconds / 3600:F2} h"), md);
        var rows = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")))!["rows"]!.AsArray();
        Assert.Equal(Math.Round(mb + 5, 1), (double)rows.Single(r => (string)r!["method"]! == "scratch")!["peak_memory_mb"]!);
    }
}
