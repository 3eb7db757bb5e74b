using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Training;
using static TorchSharp.torch;

namespace RecDistill.Tests.Training;

public class ResumeTests
{
    private static readonly TrainOptions Options = new()
    {
        MaxEpochs = 8, EvalEvery = 2, Patience = 10, LearningRate = 0.05, WeightDecay = 1e-4, BatchSize = 64, Seed = 3,
    };

    private sealed class Killed : Exception;

    /// <summary>Trains a fresh model (and MKD method when asked); kills the run at the first batch of killAtEpoch.</summary>
    private static (TrainResult? Result, float[] Users, float[] Items) Run(SplitDataset data, FrozenTeacher? teacher,
        Backbone backbone, string dir, int? killAtEpoch, bool resume, SparseAdamMode adam = SparseAdamMode.Lazy,
        TimeSpan? stateInterval = null)
    {
        manual_seed(21);
        using IRecommender model = backbone == Backbone.Bpr
            ? new BprMf(data.NumUsers, data.NumItems, 4)
            : new LightGcn(data.NumUsers, data.NumItems, 4, 2, data.Train);
        using var ctx = teacher is null ? null : new DistillationContext(teacher, data, 4, CPU);
        manual_seed(22);
        using var method = ctx is null ? null : DistillationMethods.Create(DistillationOptions.Defaults("mkd", backbone) with
        {
            Nkd = new NkdOptions { Experts = 2, PcaDim = 8 },
            Cpd = new CpdOptions { Experts = 3, TopN = 20 },
            Sld = new SldOptions { K = 5, L = 6, MxK = 12 },
        }, ctx);
        var trainer = new Trainer(Options with { SparseAdam = adam })
        {
            CheckpointPath = Path.Combine(dir, ModelFile.FileName),
            StatePath = Path.Combine(dir, TrainingCheckpoint.FileName),
            Resume = resume,
            StateInterval = stateInterval ?? TimeSpan.FromMinutes(1),
            Progress = p => { if (p.Epoch == killAtEpoch && p.Batch == 1) throw new Killed(); },
        };
        TrainResult? result = null;
        try { result = trainer.Fit(model, data, method); }
        catch (Killed) { }
        return (result, model.UserWeight.detach().data<float>().ToArray(), model.ItemWeight.detach().data<float>().ToArray());
    }

    [Theory]
    [InlineData(Backbone.Bpr, false, 5)]
    [InlineData(Backbone.Bpr, true, 4)]   // killed right after an improving epoch
    [InlineData(Backbone.LightGcn, false, 6)]
    [InlineData(Backbone.Bpr, false, 6, SparseAdamMode.Exact)]
    public void A_killed_run_resumed_ends_exactly_like_an_uninterrupted_one(Backbone backbone, bool distill, int killAt,
        SparseAdamMode adam = SparseAdamMode.Lazy)
    {
        set_num_threads(1);
        var data = TestData.Clustered(users: 40, items: 60);
        FrozenTeacher? teacher = null;
        if (distill)
        {
            manual_seed(7);
            using var t = new BprMf(data.NumUsers, data.NumItems, 16, initStd: 0.5);
            teacher = FrozenTeacher.From(t);
        }
        var whole = Run(data, teacher, backbone, TestData.TempDir(), null, resume: false, adam);

        var dir = TestData.TempDir();
        var killed = Run(data, teacher, backbone, dir, killAt, resume: false, adam);
        Assert.Null(killed.Result);
        // The state was written with the last validation (every second epoch here), not after each epoch:
        // the resumed run replays the epochs since.
        Assert.Equal((killAt - 1) / Options.EvalEvery * Options.EvalEvery, CheckpointEpoch(dir));
        var resumed = Run(data, teacher, backbone, dir, null, resume: true, adam);

        Assert.Equal(whole.Users, resumed.Users);
        Assert.Equal(whole.Items, resumed.Items);
        Assert.Equal(whole.Result!.BestEpoch, resumed.Result!.BestEpoch);
        Assert.Equal(whole.Result.BestValid, resumed.Result.BestValid);
        Assert.Equal(whole.Result.History.Select(h => (h.Epoch, h.Loss, h.ValidMetric)),
                     resumed.Result.History.Select(h => (h.Epoch, h.Loss, h.ValidMetric)));
        // The saved best model matches too.
        var (_, users, _) = ModelFile.Read(Path.Combine(dir, ModelFile.FileName));
        Assert.Equal(whole.Users, users);
        teacher?.Dispose();
    }

    private static int CheckpointEpoch(string dir) => TrainingCheckpoint.Load(Path.Combine(dir, TrainingCheckpoint.FileName)).Header.Epoch;

    [Fact]
    public void With_a_zero_interval_the_state_is_written_after_every_epoch()
    {
        set_num_threads(1);
        var data = TestData.Clustered(users: 40, items: 60);
        var dir = TestData.TempDir();
        Run(data, null, Backbone.Bpr, dir, killAtEpoch: 4, resume: false, stateInterval: TimeSpan.Zero);
        Assert.Equal(3, CheckpointEpoch(dir));
    }

    [Fact]
    public void Resuming_a_finished_run_trains_nothing_more()
    {
        var data = TestData.Clustered(users: 40, items: 60);
        var dir = TestData.TempDir();
        var first = Run(data, null, Backbone.Bpr, dir, null, resume: false);
        var again = Run(data, null, Backbone.Bpr, dir, null, resume: true);
        Assert.Equal(first.Users, again.Users);
        Assert.Equal(first.Result!.History.Count, again.Result!.History.Count);
    }

    [Fact]
    public void A_checkpoint_from_other_settings_or_cut_short_is_refused()
    {
        var data = TestData.Clustered(users: 40, items: 60);
        var dir = TestData.TempDir();
        Run(data, null, Backbone.Bpr, dir, 3, resume: false);
        var state = Path.Combine(dir, TrainingCheckpoint.FileName);
        manual_seed(21);
        using var m = new BprMf(data.NumUsers, data.NumItems, 4);
        var other = new Trainer(Options with { LearningRate = 0.01 })
            { StatePath = state, CheckpointPath = Path.Combine(dir, ModelFile.FileName), Resume = true };
        var e = Assert.Throws<UserErrorException>(() => other.Fit(m, data));
        Assert.Contains("other settings", e.Message);
        Assert.Contains("train.learning_rate 0.05 in the checkpoint, 0.01 now", e.Message);

        var bytes = File.ReadAllBytes(state);
        File.WriteAllBytes(state, bytes[..^20]);
        var e2 = Assert.Throws<DataFormatException>(() => new Trainer(Options)
            { StatePath = state, CheckpointPath = Path.Combine(dir, ModelFile.FileName), Resume = true }.Fit(m, data));
        Assert.Contains("truncated", e2.Message);
    }
}
