using System.Buffers;
using System.Numerics.Tensors;

namespace RecDistill.Serving;

/// <summary>One recommended item: its id and its score (the dot product of the final vectors).</summary>
public readonly record struct Recommendation(string ItemId, float Score);

/// <summary>
/// Top-K recommendation over all items of a <see cref="CompactModel"/>: score(u, i) = &lt;user vector,
/// item vector&gt;, the user's train items left out unless asked otherwise, best first (ties: lower
/// dense item index first). Thread-safe: the model is immutable and every query uses its own scratch.
/// <para>
/// Items are scored in blocks: for a block of B items the scores are built by one SIMD
/// multiply-add pass per dimension over the dimension-major item table (System.Numerics.Tensors),
/// then the block's seen items are set to -inf and the block goes through the top-K selector
/// (<see cref="TopK"/>, SIMD threshold check). No full sort of the items. A batch scores a group of users against each
/// block while the block is in cache.
/// </para>
/// Users outside the model: <see cref="Recommend"/> throws <see cref="UnknownUserException"/>; the library never
/// silently substitutes another answer. A caller chooses <see cref="Popular"/> (most train interactions) or
/// <see cref="RecommendFromItems"/> (a vector folded in from the items the user interacted with; <see cref="FoldIn(IReadOnlyList{string})"/>).
/// <see cref="Similar"/> ranks items by the same score with an item's vector as the query.
/// </summary>
public sealed class Recommender
{
    /// <summary>Users scored together against each item block in a batch.</summary>
    public const int BatchGroupSize = 16;

    /// <summary>
    /// Fold-in's ridge term λ as a multiple of the mean squared norm of the item vectors, so that it does not depend
    /// on the model's scale (3 to 5 gave the best top-20 agreement with trained vectors in docs/serving.md's measurement).
    /// </summary>
    public const double FoldInRegularization = 4;

    private readonly CompactModel _m;
    private readonly int _block;
    private readonly float[] _trainCounts;
    private readonly Lazy<double> _meanSquaredItemNorm;

    /// <summary>A recommender over a loaded model; counts each item's train interactions for <see cref="Popular"/>.</summary>
    public Recommender(CompactModel model)
    {
        _m = model ?? throw new ArgumentNullException(nameof(model));
        // Keep a block of item columns (dim x B floats) within ~256 KiB so a batch group reuses it from cache.
        _block = Math.Clamp(64 * 1024 / model.Dim / 16 * 16, 256, 4096);
        _trainCounts = new float[model.NumItems];
        for (int u = 0; u < model.NumUsers; u++)
            foreach (var i in model.TrainItems(u)) _trainCounts[i]++;
        _meanSquaredItemNorm = new Lazy<double>(MeanSquaredItemNorm, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Loads a model file (<see cref="CompactModel.Load"/>) and wraps it in a recommender.</summary>
    public static Recommender Load(string path) => new(CompactModel.Load(path));

    /// <summary>The model queried.</summary>
    public CompactModel Model => _m;

    /// <summary>The k best items for a user of the model, best first; fewer when fewer items are left.</summary>
    /// <exception cref="UnknownUserException">The model does not hold <paramref name="userId"/>.</exception>
    public IReadOnlyList<Recommendation> Recommend(string userId, int k, bool excludeSeen = true)
    {
        ArgumentNullException.ThrowIfNull(userId);
        return RecommendBatch([userId], k, excludeSeen)[0];
    }

    /// <summary>
    /// <see cref="Recommend"/> for many users; result j belongs to userIds[j]. Every id is checked
    /// before any work. maxDegreeOfParallelism > 1 spreads groups of users over threads.
    /// </summary>
    public IReadOnlyList<Recommendation>[] RecommendBatch(IReadOnlyList<string> userIds, int k, bool excludeSeen = true,
        int maxDegreeOfParallelism = 1)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        CheckK(k);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDegreeOfParallelism, 1);
        var dense = new int[userIds.Count];
        for (int j = 0; j < dense.Length; j++)
            dense[j] = userIds[j] is null ? throw new ArgumentException($"userIds[{j}] is null", nameof(userIds))
                : _m.TryGetUser(userIds[j], out int u) ? u : throw new UnknownUserException(userIds[j]);
        var results = new Recommendation[dense.Length][];
        int groups = (dense.Length + BatchGroupSize - 1) / BatchGroupSize;
        void Group(int g)
        {
            int start = g * BatchGroupSize, n = Math.Min(BatchGroupSize, dense.Length - start);
            var vectors = new float[n * _m.Dim];
            var seen = new int[]?[n];
            for (int j = 0; j < n; j++)
            {
                int u = dense[start + j];
                _m.UserVector(u, vectors.AsSpan(j * _m.Dim, _m.Dim));
                if (excludeSeen) seen[j] = _m.TrainItems(u).ToArray();
            }
            RankGroup(vectors, seen, k, results.AsSpan(start, n));
        }
        if (maxDegreeOfParallelism == 1 || groups == 1)
            for (int g = 0; g < groups; g++) Group(g);
        else
            Parallel.For(0, groups, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism }, Group);
        return results;
    }

    /// <summary>
    /// A user vector for someone the model does not hold, from the set S of items they interacted with (fold-in):
    /// the minimiser of Σ_{i∈S} (1 − u·v_i)² + λ‖u‖² over the item vectors v, i.e. u = (Σ_S v vᵀ + λI)⁻¹ Σ_S v
    /// (regularised least squares; λ = <see cref="FoldInRegularization"/> × mean ‖v‖²; docs/serving.md). Repeated ids count once.
    /// </summary>
    /// <exception cref="UnknownItemException">An item is not in the model.</exception>
    /// <exception cref="ArgumentException">No items.</exception>
    public float[] FoldIn(IReadOnlyList<string> itemIds) => FoldIn(DenseItems(itemIds));

    /// <summary>The k best items for the user <see cref="FoldIn(IReadOnlyList{string})"/> makes of <paramref name="itemIds"/>; those items are left out unless asked otherwise.</summary>
    public IReadOnlyList<Recommendation> RecommendFromItems(IReadOnlyList<string> itemIds, int k, bool excludeSeen = true)
    {
        CheckK(k);
        var items = DenseItems(itemIds);
        return Rank(FoldIn(items), excludeSeen ? items : null, k);
    }

    /// <summary>The k items that score highest with <paramref name="itemId"/>'s vector as the query (dot products), the item itself left out.</summary>
    /// <exception cref="UnknownItemException">The model does not hold <paramref name="itemId"/>.</exception>
    public IReadOnlyList<Recommendation> Similar(string itemId, int k)
    {
        ArgumentNullException.ThrowIfNull(itemId);
        CheckK(k);
        if (!_m.TryGetItem(itemId, out int item)) throw new UnknownItemException(itemId);
        var query = new float[_m.Dim];
        _m.ItemVector(item, query);
        return Rank(query, [item], k);
    }

    /// <summary>
    /// The k items that score highest with any query vector (dot products), best first, leaving out the dense
    /// items in <paramref name="leaveOut"/>: the exact ranking behind every other query, for vectors made elsewhere
    /// (an approximate index's query, one's own user vector).
    /// </summary>
    /// <exception cref="ArgumentException">The vector's length is not the model's dimension, or a left-out index is out of range.</exception>
    public IReadOnlyList<Recommendation> RecommendForVector(ReadOnlySpan<float> vector, int k, IEnumerable<int>? leaveOut = null)
    {
        CheckK(k);
        if (vector.Length != _m.Dim) throw new ArgumentException($"the vector has {vector.Length} values; the model's dimension is {_m.Dim}", nameof(vector));
        int[]? seen = leaveOut?.Distinct().Order().ToArray();
        if (seen is { Length: > 0 } && (seen[0] < 0 || seen[^1] >= _m.NumItems))
            throw new ArgumentException($"left-out items must be dense indices from 0 to {_m.NumItems - 1}", nameof(leaveOut));
        return Rank(vector.ToArray(), seen, k);
    }

    /// <summary>One query through <see cref="RankGroup"/>; <paramref name="seen"/> ascending dense items or null.</summary>
    private Recommendation[] Rank(float[] query, int[]? seen, int k)
    {
        var result = new Recommendation[1][];
        RankGroup(query, [seen], k, result);
        return result[0];
    }

    /// <summary>The k items with the most train interactions (score = that count; ties: lower dense index first).</summary>
    public IReadOnlyList<Recommendation> Popular(int k)
    {
        CheckK(k);
        var top = new TopK(Math.Min(k, _m.NumItems));
        top.Offer(_trainCounts, 0);
        return top.ToSorted(_m.ItemIds);
    }

    private int[] DenseItems(IReadOnlyList<string> itemIds)
    {
        ArgumentNullException.ThrowIfNull(itemIds);
        if (itemIds.Count == 0) throw new ArgumentException("fold-in needs at least one item", nameof(itemIds));
        var dense = new SortedSet<int>();
        foreach (var id in itemIds)
            dense.Add(id is null ? throw new ArgumentException("an item id is null", nameof(itemIds))
                : _m.TryGetItem(id, out int i) ? i : throw new UnknownItemException(id));
        return dense.ToArray();
    }

    private float[] FoldIn(int[] items)
    {
        int d = _m.Dim;
        double lambda = FoldInRegularization * _meanSquaredItemNorm.Value + 1e-12;
        // A = Σ_S v vᵀ + λ I, b = Σ_S v; then A u = b.
        var a = new double[d * d];
        for (int c = 0; c < d; c++) a[c * d + c] = lambda;
        var b = new double[d];
        var v = new float[d];
        foreach (int i in items)
        {
            _m.ItemVector(i, v);
            for (int r = 0; r < d; r++)
            {
                b[r] += v[r];
                for (int c = 0; c < d; c++) a[r * d + c] += (double)v[r] * v[c];
            }
        }
        SolveSymmetricPositive(a, b, d);
        var u = new float[d];
        for (int c = 0; c < d; c++) u[c] = (float)b[c];
        return u;
    }

    private double MeanSquaredItemNorm()
    {
        var all = _m.Items.DecodeAll();
        return TensorPrimitives.Dot(all, all) / _m.NumItems;
    }

    /// <summary>Solves A x = b in place (b becomes x) by Cholesky; A is symmetric positive definite (the ridge term makes it so).</summary>
    private static void SolveSymmetricPositive(double[] a, double[] b, int d)
    {
        for (int j = 0; j < d; j++)
        {
            double diag = a[j * d + j];
            for (int k = 0; k < j; k++) diag -= a[j * d + k] * a[j * d + k];
            if (!(diag > 0)) throw new InvalidOperationException("fold-in system is not positive definite (non-finite vectors?)");
            double l = Math.Sqrt(diag);
            a[j * d + j] = l;
            for (int i = j + 1; i < d; i++)
            {
                double s = a[i * d + j];
                for (int k = 0; k < j; k++) s -= a[i * d + k] * a[j * d + k];
                a[i * d + j] = s / l;
            }
        }
        for (int i = 0; i < d; i++)
        {
            double s = b[i];
            for (int k = 0; k < i; k++) s -= a[i * d + k] * b[k];
            b[i] = s / a[i * d + i];
        }
        for (int i = d - 1; i >= 0; i--)
        {
            double s = b[i];
            for (int k = i + 1; k < d; k++) s -= a[k * d + i] * b[k];
            b[i] = s / a[i * d + i];
        }
    }

    private static void CheckK(int k)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1");
    }

    /// <summary>a = sum_c u[c] * column c, where column c of the block is columns[c * stride + offset .. + a.Length).</summary>
    private static void ScoreColumns(ReadOnlySpan<float> columns, int stride, int offset, ReadOnlySpan<float> u, Span<float> a)
    {
        int len = a.Length;
        TensorPrimitives.Multiply(columns.Slice(offset, len), u[0], a);
        for (int c = 1; c < u.Length; c++)
            TensorPrimitives.MultiplyAdd(columns.Slice(c * stride + offset, len), u[c], a, a);
    }

    /// <summary>
    /// Ranks all items for query j = vectors[j*d .. (j+1)*d), leaving out seen[j] (ascending dense items; null: none).
    /// </summary>
    private void RankGroup(float[] vectors, int[]?[] seenLists, int k, Span<Recommendation[]> results)
    {
        int d = _m.Dim, ni = _m.NumItems, g = seenLists.Length, block = _block;
        var items = _m.Items;
        var pool = ArrayPool<float>.Shared;
        float[] acc = pool.Rent(block);
        // fp16, several users: each block is converted to float32 once and shared by the group's users;
        // one user: each column chunk is converted into a small buffer and used at once (stays in L1).
        bool fp16 = items.Precision == VectorPrecision.Fp16, shareBlock = fp16 && g > 1;
        float[]? dequantized = shareBlock ? pool.Rent(d * block) : fp16 ? pool.Rent(block) : null;
        try
        {
            var selectors = new TopK[g];
            var seenPos = new int[g];
            for (int j = 0; j < g; j++) selectors[j] = new TopK(Math.Min(k, ni));
            for (int start = 0; start < ni; start += block)
            {
                int len = Math.Min(block, ni - start);
                var a = acc.AsSpan(0, len);
                if (shareBlock)
                    for (int c = 0; c < d; c++)
                        TensorPrimitives.ConvertToSingle(items.F16.AsSpan(c * ni + start, len), dequantized.AsSpan(c * len, len));
                for (int j = 0; j < g; j++)
                {
                    var u = vectors.AsSpan(j * d, d);
                    switch (items.Precision)
                    {
                        case VectorPrecision.Fp32:
                            ScoreColumns(items.F32, ni, start, u, a);
                            break;
                        case VectorPrecision.Fp16 when shareBlock:
                            ScoreColumns(dequantized, len, 0, u, a);
                            break;
                        case VectorPrecision.Fp16:
                            var column = dequantized.AsSpan(0, len);
                            for (int c = 0; c < d; c++)
                            {
                                TensorPrimitives.ConvertToSingle(items.F16.AsSpan(c * ni + start, len), column);
                                if (c == 0) TensorPrimitives.Multiply(column, u[0], a);
                                else TensorPrimitives.MultiplyAdd(column, u[c], a, a);
                            }
                            break;
                        default:
                            // score = scale_i * sum_c u_c q_ci: int8 columns widened in registers, the scale applied once.
                            a.Clear();
                            for (int c = 0; c < d; c++) Kernels.MultiplyAddWidened(items.I8.AsSpan(c * ni + start, len), u[c], a);
                            TensorPrimitives.Multiply(a, items.Scales.AsSpan(start, len), a);
                            break;
                    }
                    if (seenLists[j] is { } seen)
                    {
                        int p = seenPos[j], end = start + len;
                        for (; p < seen.Length && seen[p] < end; p++) a[seen[p] - start] = float.NegativeInfinity;
                        seenPos[j] = p;
                    }
                    selectors[j].Offer(a, start);
                }
            }
            for (int j = 0; j < g; j++) results[j] = selectors[j].ToSorted(_m.ItemIds);
        }
        finally
        {
            pool.Return(acc);
            if (dequantized is not null) pool.Return(dequantized);
        }
    }
}
