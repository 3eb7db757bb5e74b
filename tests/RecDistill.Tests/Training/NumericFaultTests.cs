using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Training;

public class NumericFaultTests
{
    /// <summary>A method whose loss turns NaN (or infinite) at one batch of one epoch.</summary>
    private sealed class FaultAt(int epoch, int batch, float value) : IDistillationMethod
    {
        public string Name => "fault";
        public IEnumerable<TorchSharp.Modules.Parameter> Parameters => Array.Empty<TorchSharp.Modules.Parameter>();
        public IReadOnlyDictionary<string, double> EpochDiagnostics { get; } = new Dictionary<string, double>();
        public void OnEpochStart(int e, IRecommender student, Random rng) { }
        public (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch b) => (null, null);
        public Tensor Loss(TrainingBatch b, EmbeddingLookup student)
        {
            using Scalar added = b.Epoch == epoch && b.Index == batch ? value : 0f;
            return (student.Users(b.Users).sum() * FixedScalars.Zero).Plus(added);
        }
        public void Dispose() { }
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void A_non_finite_loss_stops_at_its_batch_and_keeps_the_best_model(float value)
    {
        var data = TestData.Clustered();
        var dir = TestData.TempDir();
        var modelPath = Path.Combine(dir, ModelFile.FileName);
        var statePath = Path.Combine(dir, TrainingCheckpoint.FileName);
        manual_seed(4);
        using var model = new BprMf(data.NumUsers, data.NumItems, 6);
        var trainer = new Trainer(new TrainOptions { MaxEpochs = 20, EvalEvery = 2, LearningRate = 0.05, BatchSize = 64, Seed = 1 })
            { CheckpointPath = modelPath, StatePath = statePath };
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Fit(model, data, new FaultAt(7, 2, value)));
        Assert.Contains("at epoch 7, batch 3/", e.Message);
        Assert.Contains("fault", e.Message);
        Assert.Contains("best model (epoch 6)", e.Message);

        // The model in memory and on disk holds the epoch-6 weights, all finite; the resume state is epoch 6's.
        Assert.True(isfinite(model.UserWeight).all().item<bool>());
        var (_, users, items) = ModelFile.Read(modelPath);
        Assert.All(users.Concat(items), v => Assert.True(float.IsFinite(v)));
        Assert.Equal(model.UserWeight.detach().data<float>().ToArray(), users);
        var state = TrainingCheckpoint.Load(statePath);
        Assert.Equal(6, state.Header.Epoch);
        Assert.All(state.Tensors.Values, t => Assert.True(isfinite(t).all().item<bool>()));
    }

    [Fact]
    public void An_empty_validation_split_is_refused_before_training()
    {
        var data = TestData.Clustered();
        var noValid = new RecDistill.Data.SplitDataset
        {
            Name = "no-valid", UserIds = data.UserIds, ItemIds = data.ItemIds, Train = data.Train, Test = data.Test,
            Valid = data.Valid.Select(_ => Array.Empty<int>()).ToArray(),
        };
        using var model = new BprMf(data.NumUsers, data.NumItems, 4);
        var e = Assert.Throws<ArgumentException>(() => new Trainer(new TrainOptions()).Fit(model, noValid));
        Assert.Contains("validation split is empty", e.Message);
    }
}
