using RecDistill.Data;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Evaluation;

/// <summary>Which held-out interactions an evaluation ranks against.</summary>
public enum EvalSplit
{
    /// <summary>The validation items; train items are masked.</summary>
    Valid,
    /// <summary>The test items; train and validation items are masked.</summary>
    Test,
}

/// <summary>Averaged metrics over the users that have at least one target item.</summary>
public sealed record EvaluationResult(IReadOnlyDictionary<string, double> Metrics, int Users)
{
    /// <summary>The mean of one metric, by key (as "ndcg@20").</summary>
    public double this[string key] => Metrics[key];

    /// <summary>Dense ids of the users evaluated, ascending (those with at least one target item).</summary>
    public IReadOnlyList<int> EvaluatedUsers { get; init; } = Array.Empty<int>();

    /// <summary>Each metric per evaluated user, aligned with <see cref="EvaluatedUsers"/> (for paired tests).</summary>
    public IReadOnlyDictionary<string, double[]> PerUser { get; init; } = new Dictionary<string, double[]>();
}

/// <summary>
/// Full ranking over all items, in user batches: scores for a batch of users, seen items masked to
/// -inf, top-K by TopKRanking. Memory is bounded by the batch (never users x items for all users).
/// </summary>
public sealed class FullRankingEvaluator
{
    private readonly SplitDataset _data;
    private readonly int[] _cutoffs;
    /// <summary>Scores held at once are at most this many floats (16 MiB by default).</summary>
    public long MaxScoresPerBatch { get; init; } = TopKRanking.DefaultMaxScoresPerBatch;

    /// <summary>An evaluator over <paramref name="data"/> at the given cutoffs (default <see cref="RankingMetrics.DefaultCutoffs"/>; all positive).</summary>
    public FullRankingEvaluator(SplitDataset data, IReadOnlyList<int>? cutoffs = null)
    {
        _data = data;
        _cutoffs = (cutoffs ?? RankingMetrics.DefaultCutoffs).OrderBy(k => k).ToArray();
        if (_cutoffs.Length == 0 || _cutoffs[0] <= 0) throw new ArgumentException("cutoffs must be positive");
    }

    /// <summary>Evaluates a model's final vectors on the chosen split (<paramref name="cancellationToken"/>: checked between user batches).</summary>
    public EvaluationResult Evaluate(IRecommender model, EvalSplit split, CancellationToken cancellationToken = default)
    {
        var (users, items) = model.FinalEmbeddings();
        using (users) using (items)
            return Evaluate(users, items, split, cancellationToken);
    }

    /// <summary>Evaluates final vectors directly (e.g. a loaded or exported model); <paramref name="cancellationToken"/> is checked between user batches.</summary>
    public EvaluationResult Evaluate(Tensor userVectors, Tensor itemVectors, EvalSplit split, CancellationToken cancellationToken = default)
    {
        var targets = split == EvalSplit.Valid ? _data.Valid : _data.Test;
        var evalUsers = Enumerable.Range(0, _data.NumUsers).Where(u => targets[u].Length > 0).ToArray();
        var sums = new Dictionary<string, double>();
        if (evalUsers.Length == 0) return new EvaluationResult(sums, 0);

        int numItems = _data.NumItems;
        int topK = Math.Min(_cutoffs[^1], numItems);
        IEnumerable<int> Seen(int u) => split == EvalSplit.Test ? _data.Train[u].Concat(_data.Valid[u]) : _data.Train[u];
        long[] top;
        using (var scope = torch.NewDisposeScope())
        {
            var ids = torch.tensor(evalUsers.Select(u => (long)u).ToArray(), device: userVectors.device);
            var ranked = TopKRanking.Compute(userVectors.index_select(0, ids), itemVectors, row => Seen(evalUsers[row]), topK,
                MaxScoresPerBatch, cancellationToken);
            top = TensorCopy.ToArray<long>(ranked);
        }
        var keys = RankingMetrics.Keys(_cutoffs).ToArray();
        var perUser = keys.ToDictionary(k => k, _ => new double[evalUsers.Length]);
        var one = new Dictionary<string, double>();
        for (int r = 0; r < evalUsers.Length; r++)
        {
            int u = evalUsers[r];
            // Masked items can only appear when a user has seen nearly every item.
            int seen = _data.Train[u].Length + (split == EvalSplit.Test ? _data.Valid[u].Length : 0);
            int keep = Math.Min(topK, Math.Max(0, numItems - seen));
            one.Clear();
            RankingMetrics.Accumulate(top.AsSpan(r * topK, keep), new HashSet<int>(targets[u]), _cutoffs, one);
            // Summed user by user in the same order as before, so the means keep their bits.
            foreach (var k in keys)
            {
                perUser[k][r] = one[k];
                sums[k] = sums.TryGetValue(k, out var s) ? s + one[k] : one[k];
            }
        }
        var means = keys.ToDictionary(k => k, k => sums[k] / evalUsers.Length);
        return new EvaluationResult(means, evalUsers.Length) { EvaluatedUsers = evalUsers, PerUser = perUser };
    }
}
