using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>Several methods at once (MKD = NKD + CPD + SLD): losses add up, ids and parameters are pooled.</summary>
public sealed class CompositeDistillation : IDistillationMethod
{
    private readonly IReadOnlyList<IDistillationMethod> _parts;

    public CompositeDistillation(string name, IReadOnlyList<IDistillationMethod> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("a composite method needs at least one part (all switched off?)");
        Name = name; _parts = parts;
    }

    public string Name { get; }
    public IReadOnlyList<IDistillationMethod> Parts => _parts;
    public IEnumerable<TorchSharp.Modules.Parameter> Parameters => _parts.SelectMany(p => p.Parameters);

    public IReadOnlyDictionary<string, double> EpochDiagnostics =>
        _parts.SelectMany(p => p.EpochDiagnostics).ToDictionary(kv => kv.Key, kv => kv.Value);

    public void OnEpochStart(int epoch, IRecommender student, Random rng)
    {
        foreach (var p in _parts) p.OnEpochStart(epoch, student, rng);
    }

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

    public void Dispose()
    {
        foreach (var p in _parts) p.Dispose();
    }
}
