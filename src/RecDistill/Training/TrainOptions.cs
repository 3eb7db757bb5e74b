using System.Text.Json.Serialization;
using RecDistill.Models;

namespace RecDistill.Training;

/// <summary>Optimisation and model-selection settings. Defaults follow SPEC sections 3, 5 and 6.</summary>
public sealed record TrainOptions
{
    /// <summary>Most epochs to train; early stopping may end the run sooner.</summary>
    public int MaxEpochs { get; init; } = 400;
    /// <summary>Validate every this many epochs (and at the last epoch).</summary>
    public int EvalEvery { get; init; } = 5;
    /// <summary>Stop after this many validations without a better NDCG@20.</summary>
    public int Patience { get; init; } = 10;
    /// <summary>Adam's learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>
    /// L2 regularization weight on the embeddings a batch uses; 1e-3, BPR-MF's default. LightGCN's is 1e-4
    /// (SPEC, and the CLI's default for --model lightgcn): <see cref="Defaults"/> gives each backbone its own.
    /// </summary>
    public double WeightDecay { get; init; } = 1e-3;
    /// <summary>Training samples (user, positive, negatives) per batch.</summary>
    public int BatchSize { get; init; } = 2048;
    /// <summary>Negative items sampled per (user, train item) pair in each epoch.</summary>
    public int NegativesPerPair { get; init; } = 1;
    /// <summary>The run's seed: the method's and model's initial values and every epoch's draws follow from it.</summary>
    public int Seed { get; init; } = 2023;
    /// <summary>
    /// Row-sparse Adam of BPR's tables: lazy (SPEC) or dense Adam's exact result. Left out of the
    /// JSON when lazy, so checkpoints written before the option existed still resume.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public SparseAdamMode SparseAdam { get; init; } = SparseAdamMode.Lazy;
    /// <summary>
    /// Dense parameters (LightGCN's tables, projectors and experts) through torch's Adam written as plain
    /// tensor operations instead of <see cref="DenseAdam"/>'s fused pass: the straightforward baseline
    /// of bench/speed.cs. Left out of the JSON when false.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool PlainAdam { get; init; }
    /// <summary>
    /// The validation metric early stopping watches and the best weights are chosen by: one of the keys the
    /// trainer's evaluation reports (recall@K, ndcg@K, precision@K or hit@K for K of <see cref="Evaluation.RankingMetrics.DefaultCutoffs"/>).
    /// </summary>
    public string SelectionMetric { get; init; } = "ndcg@20";

    /// <summary>The defaults for a backbone: weight decay 1e-3 for BPR-MF, 1e-4 for LightGCN (the CLI's defaults).</summary>
    public static TrainOptions Defaults(Backbone backbone) =>
        new() { WeightDecay = backbone == Backbone.LightGcn ? 1e-4 : 1e-3 };

    /// <summary>
    /// Throws <see cref="ArgumentException"/> for a setting out of range, naming the property and the value
    /// (<see cref="ArgumentException.ParamName"/> is the property; the CLI checks its own options first).
    /// </summary>
    public void Validate()
    {
        static ArgumentException Bad(string property, string rule, object value) =>
            new(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"TrainOptions.{property} must be {rule} (not {value})"), property);
        if (MaxEpochs < 1) throw Bad(nameof(MaxEpochs), "at least 1", MaxEpochs);
        if (EvalEvery < 1) throw Bad(nameof(EvalEvery), "at least 1", EvalEvery);
        if (Patience < 1) throw Bad(nameof(Patience), "at least 1", Patience);
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw Bad(nameof(LearningRate), "a positive number", LearningRate);
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw Bad(nameof(WeightDecay), "0 or a positive number", WeightDecay);
        if (BatchSize < 1) throw Bad(nameof(BatchSize), "at least 1", BatchSize);
        if (NegativesPerPair < 1) throw Bad(nameof(NegativesPerPair), "at least 1", NegativesPerPair);
        // Any other key reads as NaN at every validation: no epoch would ever be best, early stopping would end the
        // run after Patience validations, and its last weights would be written as if chosen.
        var metrics = Evaluation.RankingMetrics.Keys(Evaluation.RankingMetrics.DefaultCutoffs).ToList();
        if (SelectionMetric is null || !metrics.Contains(SelectionMetric))
            throw Bad(nameof(SelectionMetric), "one of " + string.Join(", ", metrics), SelectionMetric is null ? "null" : $"'{SelectionMetric}'");
        // An undefined mode would silently run as Lazy.
        if (!Enum.IsDefined(SparseAdam)) throw Bad(nameof(SparseAdam), "Lazy or Exact", (int)SparseAdam);
    }
}

/// <summary>What the trainer reports while it runs.</summary>
public sealed record TrainingProgress(
    int Epoch, int MaxEpochs, int Batch, int Batches, double EpochLoss,
    IReadOnlyDictionary<string, double>? LastValid, int BestEpoch, double BestValid, TimeSpan Elapsed,
    bool AfterValidation = false);

/// <summary>One epoch of a run, as history.csv records it.</summary>
/// <param name="Epoch">The epoch (1-based).</param>
/// <param name="Loss">Mean loss over the epoch's batches.</param>
/// <param name="Seconds">Time the epoch took, validation included.</param>
/// <param name="ValidMetric">The selection metric on validation when the epoch validated, else null.</param>
/// <param name="Diagnostics">The method's diagnostics and mean loss terms for the epoch; null without a method or when it reports none.</param>
public sealed record EpochRecord(int Epoch, double Loss, double Seconds, double? ValidMetric,
    IReadOnlyDictionary<string, double>? Diagnostics);

/// <summary>How training ended; the model holds the best-validation weights.</summary>
/// <param name="BestEpoch">The epoch of the best validation score (0 when none was taken).</param>
/// <param name="EpochsRun">The last epoch trained.</param>
/// <param name="TrainSeconds">Training time, over resumes too.</param>
/// <param name="BestValid">Validation metrics at the best epoch.</param>
/// <param name="History">Every epoch trained.</param>
/// <param name="EarlyStopped">Whether patience ran out before the last epoch.</param>
public sealed record TrainResult(
    int BestEpoch, int EpochsRun, double TrainSeconds,
    IReadOnlyDictionary<string, double> BestValid, IReadOnlyList<EpochRecord> History, bool EarlyStopped);
