using System.Text.Json.Serialization;

namespace RecDistill.Training;

/// <summary>Optimisation and model-selection settings. Defaults follow SPEC sections 3, 5 and 6.</summary>
public sealed record TrainOptions
{
    public int MaxEpochs { get; init; } = 400;
    /// <summary>Validate every this many epochs (and at the last epoch).</summary>
    public int EvalEvery { get; init; } = 5;
    /// <summary>Stop after this many validations without a better NDCG@20.</summary>
    public int Patience { get; init; } = 10;
    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; } = 1e-3;
    public int BatchSize { get; init; } = 2048;
    public int NegativesPerPair { get; init; } = 1;
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
    /// <summary>The metric early stopping watches.</summary>
    public string SelectionMetric { get; init; } = "ndcg@20";

    public void Validate()
    {
        if (MaxEpochs < 1) throw new ArgumentException("--epochs must be at least 1");
        if (EvalEvery < 1) throw new ArgumentException("--eval-every must be at least 1");
        if (Patience < 1) throw new ArgumentException("--patience must be at least 1");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException("--lr must be a positive number");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw new ArgumentException("--wd must be 0 or a positive number");
        if (BatchSize < 1) throw new ArgumentException("--batch-size must be at least 1");
        if (NegativesPerPair < 1) throw new ArgumentException("--negatives must be at least 1");
    }
}

/// <summary>What the trainer reports while it runs.</summary>
public sealed record TrainingProgress(
    int Epoch, int MaxEpochs, int Batch, int Batches, double EpochLoss,
    IReadOnlyDictionary<string, double>? LastValid, int BestEpoch, double BestValid, TimeSpan Elapsed,
    bool AfterValidation = false);

public sealed record EpochRecord(int Epoch, double Loss, double Seconds, double? ValidMetric,
    IReadOnlyDictionary<string, double>? Diagnostics);

public sealed record TrainResult(
    int BestEpoch, int EpochsRun, double TrainSeconds,
    IReadOnlyDictionary<string, double> BestValid, IReadOnlyList<EpochRecord> History, bool EarlyStopped);
