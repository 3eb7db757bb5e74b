using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;

namespace RecDistill.Tests.Runs;

/// <summary>
/// A library caller reads errors in the library's terms (the property and its value), a command-line user in the
/// command's (the option): the same mistake, named for whoever made it.
/// </summary>
public class OptionMessagesTests
{
    [Fact]
    public void The_library_names_the_train_option_property_and_its_value()
    {
        var e = Assert.Throws<ArgumentException>(() => new TrainOptions { Patience = 0 }.Validate());
        Assert.Equal(nameof(TrainOptions.Patience), e.ParamName);
        Assert.StartsWith("TrainOptions.Patience must be at least 1 (not 0)", e.Message);
        Assert.DoesNotContain("--", e.Message);
        var lr = Assert.Throws<ArgumentException>(() => new TrainOptions { LearningRate = -0.5 }.Validate());
        Assert.StartsWith("TrainOptions.LearningRate must be a positive number (not -0.5)", lr.Message);
        var dim = Assert.Throws<ArgumentException>(() => Workflow.Train(new DataOptions { Format = DataFormat.Synthetic }, new ModelShape(Backbone.Bpr, 0),
            new TrainOptions(), new RunOutput(Path.Combine(TestData.TempDir(), "run"))));
        Assert.StartsWith("ModelShape.Dim must be at least 1 (not 0)", dim.Message);
    }

    [Fact]
    public void A_selection_metric_the_evaluation_does_not_report_is_refused_before_the_run_is_written()
    {
        // It read as NaN at every validation: no epoch was ever best, and the last weights were written as the chosen ones.
        var e = Assert.Throws<ArgumentException>(() => new TrainOptions { SelectionMetric = "ndcg@15" }.Validate());
        Assert.Equal(nameof(TrainOptions.SelectionMetric), e.ParamName);
        Assert.StartsWith("TrainOptions.SelectionMetric must be one of recall@10,", e.Message);
        Assert.Contains("(not 'ndcg@15')", e.Message);
        new TrainOptions { SelectionMetric = "recall@50" }.Validate();
        var mode = Assert.Throws<ArgumentException>(() => new TrainOptions { SparseAdam = (SparseAdamMode)7 }.Validate());
        Assert.Equal(nameof(TrainOptions.SparseAdam), mode.ParamName);
        var dir = Path.Combine(TestData.TempDir(), "run");
        Assert.Throws<ArgumentException>(() => Workflow.Train(TestData.TinySynthetic(3), new ModelShape(Backbone.Bpr, 4),
            TestData.ShortTraining(3) with { SelectionMetric = "NDCG@20" }, new RunOutput(dir)));
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void The_command_names_its_option()
    {
        var (code, _, errors) = RecDistill.Tests.Serving.ServingCliTests.RunWithErrors("train", "--synthetic-users", "50", "--patience", "0",
            "--out", Path.Combine(TestData.TempDir(), "run"));
        Assert.Equal(2, code);
        Assert.Contains("--patience must be at least 1", errors);
        Assert.DoesNotContain("TrainOptions", errors);
    }
}
