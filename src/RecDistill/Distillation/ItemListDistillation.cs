using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>
/// What the output-layer baselines (KD, RD, CD, RRD) share: once per epoch, a list of items per user
/// (and whatever per-entry values the method needs); per batch, the student's scores on the lists of
/// the batch's distinct users, and a loss on them.
/// </summary>
public abstract class ItemListDistillation : IDistillationMethod
{
    protected ItemListDistillation(DistillationContext ctx) => Context = ctx;

    protected DistillationContext Context { get; }
    private Tensor? _lists;
    private Tensor? _batchUsers;
    private readonly List<Tensor> _epochTensors = new();

    public abstract string Name { get; }
    public virtual IEnumerable<TorchSharp.Modules.Parameter> Parameters => Array.Empty<TorchSharp.Modules.Parameter>();
    public virtual IReadOnlyDictionary<string, double> EpochDiagnostics { get; } = new Dictionary<string, double>();

    /// <summary>The item lists [users, m] of this epoch; values kept with <see cref="Keep"/> live as long.</summary>
    protected abstract Tensor BuildLists(int epoch, IRecommender student, Random rng);

    /// <summary>Loss for the batch's distinct users (rows of the lists), from the student's scores on their lists [n, m].</summary>
    protected abstract Tensor ListLoss(Tensor users, Tensor studentScores);

    /// <summary>Keeps a per-epoch tensor alive until the next epoch (out of the caller's dispose scope).</summary>
    protected Tensor Keep(Tensor t)
    {
        var kept = t.MoveToOuterDisposeScope();
        _epochTensors.Add(kept);
        return kept;
    }

    public void OnEpochStart(int epoch, IRecommender student, Random rng)
    {
        foreach (var t in _epochTensors) t.Dispose();
        _epochTensors.Clear();
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        _lists = Keep(BuildLists(epoch, student, rng));
    }

    public (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch batch)
    {
        _batchUsers = batch.DistinctUsers;
        return (null, _lists!.index_select(0, _batchUsers).flatten());
    }

    public Tensor Loss(TrainingBatch batch, EmbeddingLookup student)
    {
        var users = _batchUsers!;
        return ListLoss(users, student.ListScores(users, _lists!.index_select(0, users)));
    }

    public virtual void Dispose()
    {
        foreach (var t in _epochTensors) t.Dispose();
        _epochTensors.Clear();
    }
}
