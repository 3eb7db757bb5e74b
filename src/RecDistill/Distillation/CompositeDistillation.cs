using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>Several methods at once (MKD = NKD + CPD + SLD): losses add up, ids and parameters are pooled.</summary>
public sealed class CompositeDistillation : IDistillationMethod
{
    private readonly IReadOnlyList<IDistillationMethod> _parts;

    /// <summary>
    /// A method named <paramref name="name"/> made of <paramref name="parts"/>; throws
    /// <see cref="ArgumentException"/> when there are none.
    /// </summary>
    public CompositeDistillation(string name, IReadOnlyList<IDistillationMethod> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("a composite method needs at least one part (all switched off?)");
        Name = name; _parts = parts;
    }

    /// <inheritdoc/>
    public string Name { get; }
    /// <summary>The methods combined, in order.</summary>
    public IReadOnlyList<IDistillationMethod> Parts => _parts;
    /// <summary>Every part's parameters.</summary>
    public IEnumerable<TorchSharp.Modules.Parameter> Parameters => _parts.SelectMany(p => p.Parameters);

    /// <summary>Every part's diagnostics in one dictionary.</summary>
    public IReadOnlyDictionary<string, double> EpochDiagnostics =>
        _parts.SelectMany(p => p.EpochDiagnostics).ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>Every part's per-epoch step, in part order.</summary>
    public void OnEpochStart(int epoch, IRecommender student, Random rng)
    {
        foreach (var p in _parts) p.OnEpochStart(epoch, student, rng);
    }

    /// <summary>Every part's extra user and item ids, concatenated (null where no part has any).</summary>
    public (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch batch)
    {
        var users = new List<Tensor>();
        var items = new List<Tensor>();
        foreach (var p in _parts)
        {
            var (u, i) = p.ExtraIds(batch);
            if (u is not null) users.Add(u.flatten());
            if (i is not null) items.Add(i.flatten());
        }
        return (users.Count == 0 ? null : torch.cat(users), items.Count == 0 ? null : torch.cat(items));
    }

    /// <summary>Every part's terms, in part order.</summary>
    public IReadOnlyList<LossTerm> Terms(TrainingBatch batch) => _parts.SelectMany(p => p.Terms(batch)).ToList();

    /// <summary>The sum of the parts' (weighted) losses.</summary>
    public Tensor Loss(TrainingBatch batch, EmbeddingLookup student)
    {
        Tensor? total = null;
        foreach (var p in _parts)
        {
            var l = p.Loss(batch, student);
            total = total is null ? l : total.Plus(l);
        }
        return total!;
    }

    /// <summary>Disposes every part.</summary>
    public void Dispose()
    {
        foreach (var p in _parts) p.Dispose();
    }
}
