using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>One mini-batch of BPR samples as index tensors on the training device.</summary>
public sealed record TrainingBatch(Tensor Users, Tensor Positives, Tensor Negatives, int Epoch, int Index)
{
    private Tensor? _distinctUsers, _distinctPositives, _distinctNegatives, _distinctItems;

    // A copy made with `with` may hold other ids: it starts without the cached sets.
    private TrainingBatch(TrainingBatch original)
    {
        Users = original.Users; Positives = original.Positives; Negatives = original.Negatives;
        Epoch = original.Epoch; Index = original.Index;
    }

    /// <summary>Samples start .. start + count - 1 of an epoch as a batch on the given device (the CPU by default).</summary>
    public static TrainingBatch Slice(Data.EpochSamples samples, int start, int count, int epoch, int index, Device? device = null)
    {
        int ns = samples.NegativesPerPair;
        return new TrainingBatch(
            torch.tensor(samples.Users.AsSpan(start, count).ToArray(), device: device),
            torch.tensor(samples.Positives.AsSpan(start, count).ToArray(), device: device),
            torch.tensor(samples.Negatives.AsSpan(start * ns, count * ns).ToArray(), device: device).view(count, ns),
            epoch, index);
    }

    // Sorted distinct ids, computed once per batch for all the methods (and MKD's parts) that ask.
    /// <summary>The batch's distinct users, sorted.</summary>
    public Tensor DistinctUsers => _distinctUsers ??= TensorOps.Unique(Users);
    /// <summary>The batch's distinct positive items, sorted.</summary>
    public Tensor DistinctPositives => _distinctPositives ??= TensorOps.Unique(Positives);
    /// <summary>The batch's distinct negative items, sorted.</summary>
    public Tensor DistinctNegatives => _distinctNegatives ??= TensorOps.Unique(Negatives);
    /// <summary>The batch's distinct items, positive or negative, sorted.</summary>
    public Tensor DistinctItems => _distinctItems ??= TensorOps.Unique(torch.cat(new[] { Positives, Negatives.flatten() }));
}

/// <summary>
/// A knowledge-distillation method plugged into the one training loop:
/// loss = base BPR loss + <see cref="Loss"/> (already weighted by the method's lambda).
/// The teacher is frozen inside the method; only the student and <see cref="Parameters"/> are trained.
/// </summary>
public interface IDistillationMethod : IDisposable
{
    /// <summary>The method's name ("kd", "de", "mkd", "nkd+cpd", ...): shown in training progress and the name of its default loss term.</summary>
    string Name { get; }

    /// <summary>Extra trainable parameters (projectors, experts), updated by the trainer's optimizer.</summary>
    IEnumerable<TorchSharp.Modules.Parameter> Parameters { get; }

    /// <summary>Per-epoch step: refresh samples and caches from the current student.</summary>
    void OnEpochStart(int epoch, IRecommender student, Random rng);

    /// <summary>User and item ids (beyond the batch's own) whose student vectors <see cref="Loss"/> will read; null for none.</summary>
    (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch batch);

    /// <summary>Weighted KD loss for the batch (a scalar), reading student vectors through <paramref name="student"/>.</summary>
    Tensor Loss(TrainingBatch batch, EmbeddingLookup student);

    /// <summary>
    /// The same loss as terms that add up to it and whose gradients the trainer computes apart, on
    /// different threads (each term draws from its own generator, see <see cref="LossGenerator"/>).
    /// A method splits where its parts are independent and of similar cost; default: one term.
    /// Terms may share trainable parameters: each term computes with its own copies of them, and the
    /// trainer adds the copies' gradients in term order (see <see cref="ParameterAliases"/>).
    /// </summary>
    IReadOnlyList<LossTerm> Terms(TrainingBatch batch) => [new LossTerm(Name, student => Loss(batch, student))];

    /// <summary>Per-epoch diagnostics to report (e.g. an inconsistency rate); empty when none.</summary>
    IReadOnlyDictionary<string, double> EpochDiagnostics { get; }
}
