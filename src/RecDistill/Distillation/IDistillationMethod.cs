using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>One mini-batch of BPR samples as index tensors on the training device.</summary>
public sealed record TrainingBatch(Tensor Users, Tensor Positives, Tensor Negatives, int Epoch, int Index);

/// <summary>
/// A knowledge-distillation method plugged into the one training loop:
/// loss = base BPR loss + <see cref="Loss"/> (already weighted by the method's lambda).
/// The teacher is frozen inside the method; only the student and <see cref="Parameters"/> are trained.
/// </summary>
public interface IDistillationMethod : IDisposable
{
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
    /// At most two terms may share a trainable parameter: libtorch adds the terms' gradients of a
    /// shared parameter in the order the threads finish, and only a sum of two is the same either way.
    /// </summary>
    IReadOnlyList<LossTerm> Terms(TrainingBatch batch) => [new LossTerm(Name, student => Loss(batch, student))];

    /// <summary>Per-epoch diagnostics to report (e.g. an inconsistency rate); empty when none.</summary>
    IReadOnlyDictionary<string, double> EpochDiagnostics { get; }
}
