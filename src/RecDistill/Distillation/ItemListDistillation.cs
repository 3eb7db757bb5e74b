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
    /// <summary>A method on the context's teacher and data; the lists come at the first epoch.</summary>
    protected ItemListDistillation(DistillationContext ctx) => Context = ctx;

    /// <summary>The teacher, the data and the teacher's top-K lists.</summary>
    protected DistillationContext Context { get; }
    private Tensor? _lists;
    private Tensor? _batchUsers;
    private readonly List<Tensor> _epochTensors = new();

    /// <inheritdoc/>
    public abstract string Name { get; }
    /// <summary>None: the list methods train no parameters of their own.</summary>
    public virtual IEnumerable<TorchSharp.Modules.Parameter> Parameters => Array.Empty<TorchSharp.Modules.Parameter>();
    /// <summary>None by default.</summary>
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

    /// <summary>Frees the last epoch's tensors and builds this epoch's lists (<see cref="BuildLists"/>), without gradient.</summary>
    public void OnEpochStart(int epoch, IRecommender student, Random rng)
    {
        foreach (var t in _epochTensors) t.Dispose();
        _epochTensors.Clear();
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        _lists = Keep(BuildLists(epoch, student, rng));
    }

    /// <summary>The items on the lists of the batch's distinct users; no extra users.</summary>
    public (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch batch)
    {
        _batchUsers = batch.DistinctUsers;
        return (null, _lists!.index_select(0, _batchUsers).flatten());
    }

    /// <summary><see cref="ListLoss"/> on the student's scores of the lists of the batch's distinct users.</summary>
    public Tensor Loss(TrainingBatch batch, EmbeddingLookup student)
    {
        var users = _batchUsers!;
        return ListLoss(users, student.ListScores(users, _lists!.index_select(0, users)));
    }

    /// <summary>Frees the epoch's lists and kept tensors.</summary>
    public virtual void Dispose()
    {
        foreach (var t in _epochTensors) t.Dispose();
        _epochTensors.Clear();
    }
}
