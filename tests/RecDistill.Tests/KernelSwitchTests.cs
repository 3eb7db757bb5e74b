using System.Text.Json.Nodes;
using RecDistill.Cli;
using RecDistill.Runs;

namespace RecDistill.Tests;

public class KernelSwitchTests
{
    [Fact]
    public void The_choice_holds_in_its_scope_and_its_parallel_workers_and_is_restored()
    {
        Assert.True(KernelSwitch.Uses(KernelSwitch.ListScores));
        using (KernelSwitch.Use(KernelChoice.Plain))
        {
            Assert.False(KernelSwitch.Uses(KernelSwitch.ListScores));
            var seen = new bool[64];
            Parallel.For(0, seen.Length, i => seen[i] = KernelSwitch.Uses(KernelSwitch.HtdLoss));
            Assert.DoesNotContain(true, seen);
            using (KernelSwitch.Use(true)) Assert.True(KernelSwitch.Uses(KernelSwitch.HtdLoss));
            Assert.False(KernelSwitch.Uses(KernelSwitch.HtdLoss));
        }
        Assert.True(KernelSwitch.Uses(KernelSwitch.ListScores));
    }

    [Fact]
    public void Choices_parse_print_and_name_only_real_kernels()
    {
        var one = KernelChoice.Parse("plain:htd-loss, nkd-loss");
        Assert.False(one.Uses("htd-loss"));
        Assert.True(one.Uses("list-scores"));
        Assert.Equal("plain:nkd-loss,htd-loss", one.ToString());
        Assert.Equal("plain", KernelChoice.Parse("PLAIN").ToString());
        Assert.Same(KernelChoice.Accelerated, KernelChoice.Parse("plain:"));
        Assert.Throws<ArgumentException>(() => KernelChoice.Parse("plain:expert-mlp"));
        Assert.Throws<ArgumentException>(() => KernelChoice.Parse("fast"));
        // Every name the switch's call sites use is a public kernel name, and the other way round.
        var constants = typeof(KernelSwitch).GetFields().Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).Order();
        Assert.Equal(KernelChoice.Names.Order(), constants);
    }

    [Fact]
    public void Plain_forms_are_chosen_from_the_command_line_and_recorded()
    {
        var root = TestData.TempDir();
        var common = new[] { "--synthetic-users", "100", "--synthetic-items", "120", "--epochs", "2", "--eval-every", "1", "--batch-size", "256", "--threads", "1" };
        var teacher = Path.Combine(root, "teacher");
        Assert.Equal(0, CliApp.Run(new[] { "train", "--dim", "16", "--out", teacher }.Concat(common).ToArray()));
        string Kernels(string dir) => (string)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, RunDirectory.MetricsFile)))!["kernels"]!;
        Assert.Equal("accelerated", Kernels(teacher));
        var plain = Path.Combine(root, "mkd-plain");
        var fast = Path.Combine(root, "mkd-fast");
        Assert.Equal(0, CliApp.Run(new[] { "distill", "--teacher", teacher, "--method", "mkd", "--kernels", "plain", "--out", plain, "--epochs", "2", "--eval-every", "1", "--threads", "1" }));
        Assert.Equal(0, CliApp.Run(new[] { "distill", "--teacher", teacher, "--method", "mkd", "--out", fast, "--epochs", "2", "--eval-every", "1", "--threads", "1" }));
        Assert.Equal("plain", Kernels(plain));
        // Both forms compute the same losses up to float rounding: every loss column of each epoch agrees.
        var a = File.ReadAllLines(Path.Combine(fast, RunDirectory.HistoryFile));
        var b = File.ReadAllLines(Path.Combine(plain, RunDirectory.HistoryFile));
        Assert.Equal(a[0], b[0]);
        Assert.Equal(a.Length, b.Length);
        var header = a[0].Split(',');
        var lossColumns = Enumerable.Range(0, header.Length).Where(c => header[c].StartsWith("loss", StringComparison.Ordinal)).ToList();
        Assert.True(lossColumns.Count >= 4, $"loss columns: {a[0]}"); // the total and MKD's terms
        for (int row = 1; row < a.Length; row++)
            foreach (int c in lossColumns)
            {
                double x = double.Parse(a[row].Split(',')[c], System.Globalization.CultureInfo.InvariantCulture);
                double y = double.Parse(b[row].Split(',')[c], System.Globalization.CultureInfo.InvariantCulture);
                Assert.True(Math.Abs(x - y) <= 1e-4 * Math.Max(1, Math.Abs(x)), $"epoch {row}, {header[c]}: {x} with the kernels, {y} without");
            }
        Assert.Equal(2, CliApp.Run(new[] { "distill", "--teacher", teacher, "--kernels", "fast", "--out", Path.Combine(root, "x") }));
    }
}
