using System.Globalization;
using RecDistill.Models;
using RecDistill.Runs;

namespace RecDistill.Tests.Training;

public class TermDiagnosticsTests
{
    [Fact]
    public void History_holds_each_terms_loss_and_embedding_gradient_and_the_losses_add_up()
    {
        var root = TestData.TempDir();
        var teacher = Path.Combine(root, "teacher");
        Workflow.Train(TestData.TinySynthetic(6), new ModelShape(Backbone.Bpr, 16), TestData.ShortTraining(6), new RunOutput(teacher));
        var student = Path.Combine(root, "mkd");
        Workflow.Distill(teacher, "mkd", TestData.ShortTraining(8), studentDim: 4, output: new RunOutput(student));
        var lines = File.ReadAllLines(Path.Combine(student, RunDirectory.HistoryFile));
        var header = lines[0].Split(',');
        var lossColumns = header.Select((h, i) => (h, i)).Where(x => x.h.StartsWith("loss_", StringComparison.Ordinal)).ToList();
        // NKD's shards count as one term; CPD's feature loss and regulariser are two.
        Assert.Equal(new[] { "loss_bpr", "loss_cpd_features", "loss_nkd", "loss_sld" }, lossColumns.Select(x => x.h).Where(h => !h.Contains("reg")).Order());
        foreach (var (h, _) in lossColumns) Assert.Contains("grad_" + h["loss_".Length..], header);
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split(',');
            double V(int i) => double.Parse(f[i], CultureInfo.InvariantCulture);
            // The epoch's loss is the sum of its terms' (each a mean over the epoch's batches).
            Assert.Equal(V(1), lossColumns.Sum(c => V(c.i)), V(1) * 1e-4);
            foreach (var (h, _) in lossColumns)
            {
                double grad = V(Array.IndexOf(header, "grad_" + h["loss_".Length..]));
                // CPD's regulariser sees the student detached (SPEC: it trains the projector only).
                if (h == "loss_cpd_regulariser") Assert.Equal(0, grad);
                else Assert.True(grad > 0, h);
            }
        }
        // A run without a method has no term columns.
        Assert.DoesNotContain("loss_bpr", File.ReadAllLines(Path.Combine(teacher, RunDirectory.HistoryFile))[0]);
    }
}
