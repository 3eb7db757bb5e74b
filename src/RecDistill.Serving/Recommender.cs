using System.Buffers;
using System.Numerics.Tensors;

namespace RecDistill.Serving;

/// <summary>One recommended item: its raw id and its score (the dot product of the final vectors).</summary>
public readonly record struct Recommendation(long ItemId, float Score);

/// <summary>
/// Top-K recommendation over all items of a <see cref="CompactModel"/>: score(u, i) = &lt;user vector,
/// item vector&gt;, the user's train items left out unless asked otherwise, best first (ties: lower
/// dense item id first). Thread-safe: the model is immutable and every query uses its own scratch.
/// <para>
/// Items are scored in blocks: for a block of B items the scores are built by one SIMD
/// multiply-add pass per dimension over the dimension-major item table (System.Numerics.Tensors),
/// then the block's seen items are set to -inf and the block goes through the top-K selector
/// (<see cref="TopK"/>, SIMD threshold check). No full sort of the items. A batch scores a group of users against each
/// block while the block is in cache.
/// </para>
/// Unknown users: <see cref="Recommend"/> throws <see cref="UnknownUserException"/>; the library never
/// silently substitutes another answer. <see cref="Popular"/> gives the most popular items by train
/// count for callers that want a cold-start fallback.
/// </summary>
public sealed class Recommender
{
    /// <summary>Users scored together against each item block in a batch.</summary>
    public const int BatchGroupSize = 16;

    private readonly CompactModel _m;
    private readonly int _block;
    private readonly float[] _trainCounts;

    public Recommender(CompactModel model)
    {
        _m = model ?? throw new ArgumentNullException(nameof(model));
        // Keep a block of item columns (dim x B floats) within ~256 KiB so a batch group reuses it from cache.
        _block = Math.Clamp(64 * 1024 / model.Dim / 16 * 16, 256, 4096);
        _trainCounts = new float[model.NumItems];
        for (int u = 0; u < model.NumUsers; u++)
            foreach (var i in model.TrainItems(u)) _trainCounts[i]++;
    }

    public static Recommender Load(string path) => new(CompactModel.Load(path));

    public CompactModel Model => _m;

    public bool ContainsUser(long rawUserId) => _m.TryGetUser(rawUserId, out _);

    /// <summary>The k best items for a user, best first; fewer when fewer items are left.</summary>
    public IReadOnlyList<Recommendation> Recommend(long rawUserId, int k, bool excludeSeen = true)
    {
        CheckK(k);
        Span<int> user = stackalloc int[1];
        user[0] = Dense(rawUserId);
        var result = new Recommendation[1][];
        RankGroup(user, k, excludeSeen, result);
        return result[0];
    }

    /// <summary>
    /// <see cref="Recommend"/> for many users; result j belongs to rawUserIds[j]. Every id is checked
    /// before any work. maxDegreeOfParallelism > 1 spreads groups of users over threads.
    /// </summary>
    public IReadOnlyList<Recommendation>[] RecommendBatch(IReadOnlyList<long> rawUserIds, int k, bool excludeSeen = true,
        int maxDegreeOfParallelism = 1)
    {
        CheckK(k);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDegreeOfParallelism, 1);
        var dense = new int[rawUserIds.Count];
        for (int j = 0; j < dense.Length; j++) dense[j] = Dense(rawUserIds[j]);
        var results = new Recommendation[dense.Length][];
        int groups = (dense.Length + BatchGroupSize - 1) / BatchGroupSize;
        void Group(int g)
        {
            int start = g * BatchGroupSize, n = Math.Min(BatchGroupSize, dense.Length - start);
            RankGroup(dense.AsSpan(start, n), k, excludeSeen, results.AsSpan(start, n));
        }
        if (maxDegreeOfParallelism == 1 || groups == 1)
            for (int g = 0; g < groups; g++) Group(g);
        else
            Parallel.For(0, groups, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism }, Group);
        return results;
    }

    /// <summary>The k items with the most train interactions (score = that count; ties: lower dense id first).</summary>
    public IReadOnlyList<Recommendation> Popular(int k)
    {
        CheckK(k);
        var top = new TopK(Math.Min(k, _m.NumItems));
        top.Offer(_trainCounts, 0);
        return top.ToSorted(_m.ItemRawIds);
    }

    private int Dense(long rawUserId) =>
        _m.TryGetUser(rawUserId, out int u) ? u : throw new UnknownUserException(rawUserId);

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

    private void RankGroup(ReadOnlySpan<int> users, int k, bool excludeSeen, Span<Recommendation[]> results)
    {
        int d = _m.Dim, ni = _m.NumItems, g = users.Length, block = _block;
        var items = _m.Items;
        var pool = ArrayPool<float>.Shared;
        float[] userVectors = pool.Rent(g * d), acc = pool.Rent(block);
        // fp16, several users: each block is converted to float32 once and shared by the group's users;
        // one user: each column chunk is converted into a small buffer and used at once (stays in L1).
        bool fp16 = items.Precision == VectorPrecision.Fp16, shareBlock = fp16 && g > 1;
        float[]? dequantized = shareBlock ? pool.Rent(d * block) : fp16 ? pool.Rent(block) : null;
        try
        {
            var selectors = new TopK[g];
            var seenPos = new int[g];
            for (int j = 0; j < g; j++)
            {
                _m.UserVector(users[j], userVectors.AsSpan(j * d, d));
                selectors[j] = new TopK(Math.Min(k, ni));
            }
            for (int start = 0; start < ni; start += block)
            {
                int len = Math.Min(block, ni - start);
                var a = acc.AsSpan(0, len);
                if (shareBlock)
                    for (int c = 0; c < d; c++)
                        TensorPrimitives.ConvertToSingle(items.F16.AsSpan(c * ni + start, len), dequantized.AsSpan(c * len, len));
                for (int j = 0; j < g; j++)
                {
                    var u = userVectors.AsSpan(j * d, d);
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
                    if (excludeSeen)
                    {
                        var seen = _m.TrainItems(users[j]);
                        int p = seenPos[j], end = start + len;
                        for (; p < seen.Length && seen[p] < end; p++) a[seen[p] - start] = float.NegativeInfinity;
                        seenPos[j] = p;
                    }
                    selectors[j].Offer(a, start);
                }
            }
            for (int j = 0; j < g; j++) results[j] = selectors[j].ToSorted(_m.ItemRawIds);
        }
        finally
        {
            pool.Return(userVectors);
            pool.Return(acc);
            if (dequantized is not null) pool.Return(dequantized);
        }
    }
}
