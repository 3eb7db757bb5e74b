using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Kernels;

internal static class TensorOps
{
    /// <summary>Whether the C# kernels can read these tensors in place: all float32 on the CPU.</summary>
    public static bool Float32OnCpu(params Tensor[] tensors) =>
        tensors.All(t => t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32);

    /// <summary>Sorted distinct values of a tensor, flattened.</summary>
    public static Tensor Unique(Tensor t)
    {
        var (u, _, _) = torch.unique(t.flatten(), sorted: true);
        return u;
    }

    /// <summary>
    /// Rows grouped by label (0..groups-1): a permutation that lists each group's rows together, in
    /// label order, and each group's size; group g is order.narrow(0, sum of sizes before g, sizes[g]).
    /// </summary>
    public static (Tensor Order, long[] Sizes) GroupByLabel(Tensor labels, int groups)
    {
        var (_, order) = labels.sort();
        return (order, TensorCopy.ToArray<long>(torch.bincount(labels, minlength: groups)));
    }

    /// <summary>
    /// result[r, j] = whether values[r, j] occurs in sets[r, :], for ids in [0, universe): values [n, a],
    /// sets [n, b] (int64) -> bool [n, a]. The libtorch form (values[:, :, None] == sets[:, None, :]).any(2)
    /// builds an [n, a, b] tensor; here each row marks its set in a stamp table, O(a + b) per row,
    /// reading and writing the tensors in place (copies into arrays cost SLD's per-epoch step 46 ms of 260).
    /// </summary>
    public static unsafe Tensor InRows(Tensor values, Tensor sets, int universe)
    {
        if (values.dim() != 2 || sets.dim() != 2 || values.shape[0] != sets.shape[0])
            throw new ArgumentException($"InRows: values [{string.Join(", ", values.shape)}] and sets [{string.Join(", ", sets.shape)}] need the same rows");
        using var scope = torch.NewDisposeScope();
        var v = values.to(ScalarType.Int64).cpu().contiguous();
        var st = sets.to(ScalarType.Int64).cpu().contiguous();
        CheckIds(v, universe, nameof(values));
        CheckIds(st, universe, nameof(sets));
        int n = (int)values.shape[0], a = (int)values.shape[1], b = (int)sets.shape[1];
        var result = torch.empty(n, a, dtype: ScalarType.Bool);
        fixed (byte* vb = v.bytes, sb = st.bytes, rb = result.bytes)
        {
            nint V = (nint)vb, S = (nint)sb, R = (nint)rb;
            RowChunks.Run(n, 512, (from, to) =>
            {
                // Stamp r + 1 marks row r's set: no clearing between rows.
                var stamp = new int[universe];
                long* vs = (long*)V, ss = (long*)S;
                bool* res = (bool*)R;
                for (int r = from; r < to; r++)
                {
                    for (int k = 0; k < b; k++) stamp[ss[(long)r * b + k]] = r + 1;
                    for (int j = 0; j < a; j++) res[(long)r * a + j] = stamp[vs[(long)r * a + j]] == r + 1;
                }
            });
        }
        return result.to(values.device).MoveToOuterDisposeScope();
    }

    private static void CheckIds(Tensor ids, int universe, string name)
    {
        if (ids.numel() == 0) return;
        long min = ids.min().item<long>(), max = ids.max().item<long>();
        if (min < 0) throw new ArgumentOutOfRangeException(name, $"id {min} outside [0, {universe})");
        if (max >= universe) throw new ArgumentOutOfRangeException(name, $"id {max} outside [0, {universe})");
    }

    /// <summary>Row-wise dot products: a [n, d], b [n, d] -> [n].</summary>
    public static Tensor RowDot(Tensor a, Tensor b) => (a * b).sum(-1);
}
