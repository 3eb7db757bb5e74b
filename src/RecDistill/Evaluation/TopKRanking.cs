using RecDistill.Serving;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Evaluation;

/// <summary>
/// Top-K items per user of a set of final vectors with seen items excluded, computed in user
/// batches (never a users x items matrix for all users). The evaluator, the teacher's top-K cache
/// and SLD's per-epoch student lists all rank through this.
/// </summary>
public static class TopKRanking
{
    /// <summary>
    /// Scores per user batch: 4M floats (16 MB) stay below the 32 MB beyond which glibc maps blocks
    /// fresh from the kernel (AllocatorTuning), so the batch buffer is reused instead of page-faulted
    /// in again for every batch; the matmul is as efficient as with larger batches.
    /// </summary>
    public const long DefaultMaxScoresPerBatch = 4L << 20;

    /// <summary>Top-k per user with each user's train items excluded: [users, k], best first.</summary>
    public static Tensor Compute(Tensor users, Tensor items, int[][] train, int k, long maxScoresPerBatch = DefaultMaxScoresPerBatch) =>
        Compute(users, items, row => train[row], k, maxScoresPerBatch);

    /// <summary>
    /// Top-k per row of <paramref name="users"/>, the items <paramref name="excluded"/>(row) left out.
    /// Ties go to the lower item id; when a row has fewer than k items left, its list is filled up
    /// with excluded items in ascending id order. <paramref name="cancellationToken"/> is checked before
    /// every user batch (a cancelled call's temporaries are left to their finalizers).
    /// </summary>
    public static Tensor Compute(Tensor users, Tensor items, Func<int, IEnumerable<int>> excluded, int k,
        long maxScoresPerBatch = DefaultMaxScoresPerBatch, CancellationToken cancellationToken = default)
    {
        using var _ = torch.no_grad();
        int numUsers = (int)users.shape[0], numItems = (int)items.shape[0];
        k = Math.Min(k, numItems);
        int batch = (int)Math.Clamp(maxScoresPerBatch / numItems, 1, 4096);
        var result = torch.empty(numUsers, k, dtype: ScalarType.Int64, device: users.device);
        if (k == 0) return result;
        bool onCpu = users.device_type == DeviceType.CPU;
        // On the CPU with AVX-512 the scores come from Sgemm with the item table packed once for all
        // user batches: a BPR d=200 teacher's whole run is 19% shorter than with libtorch's product
        // (results/perf/kernel-ab-whole-runs-f3c29e9).
        bool kernel = onCpu && KernelSwitch.Uses(KernelSwitch.Sgemm) && Sgemm.IsSupported && users.dtype == ScalarType.Float32 && items.dtype == ScalarType.Float32;
        var userRows = kernel ? users.contiguous() : null;
        using var packedItems = kernel ? PackTransposed(items) : null;
        var itemsT = items.t();
        for (int start = 0; start < numUsers; start += batch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            int n = Math.Min(batch, numUsers - start);
            var scores = kernel ? Scores(userRows!, start, n, packedItems!) : users.narrow(0, start, n).matmul(itemsT);
            if (onCpu)
            {
                // On the CPU a scan of each row with a threshold (TopK) is several times faster than
                // libtorch's general top-k, most of all for k in the hundreds.
                SelectOnCpu(scores.to(ScalarType.Float32).contiguous(), result.narrow(0, start, n), start, excluded, k);
                continue;
            }
            var masked = new List<long>();
            for (int b = 0; b < n; b++)
                foreach (var i in excluded(start + b)) masked.Add((long)b * numItems + i);
            if (masked.Count > 0)
                scores.view(-1).index_fill_(0, torch.tensor(masked.ToArray(), device: scores.device), FixedScalars.NegativeInfinity);
            var (_, top) = scores.topk(k, dim: 1);
            result.narrow(0, start, n).copy_(top);
        }
        if (userRows is not null && !ReferenceEquals(userRows, users)) userRows.Dispose();
        return result;
    }

    /// <summary>items [I, d] as the packed right operand d x I of user-by-item products.</summary>
    private static unsafe Sgemm.PackedMatrix PackTransposed(Tensor items)
    {
        int numItems = (int)items.shape[0], d = (int)items.shape[1];
        var rows = items.contiguous();
        try
        {
            fixed (byte* p = rows.bytes) return new Sgemm.PackedMatrix((float*)p, 1, d, d, numItems);
        }
        finally { if (!ReferenceEquals(rows, items)) rows.Dispose(); }
    }

    private static unsafe Tensor Scores(Tensor users, int start, int n, Sgemm.PackedMatrix items)
    {
        int d = (int)users.shape[1];
        var scores = torch.empty(n, items.Columns, dtype: ScalarType.Float32);
        fixed (byte* u = users.bytes, s = scores.bytes)
            Sgemm.Multiply((float*)u + (long)start * d, d, 1, items, (float*)s, n);
        return scores;
    }

    private static unsafe void SelectOnCpu(Tensor scores, Tensor destination, int firstRow, Func<int, IEnumerable<int>> excluded, int k)
    {
        int n = (int)scores.shape[0], numItems = (int)scores.shape[1];
        fixed (byte* scoreBytes = scores.bytes, outBytes = destination.bytes)
        {
            nint scoresPtr = (nint)scoreBytes, outPtr = (nint)outBytes;
            RowChunks.Run(n, 64, (from, to) =>
            {
                var heap = new TopK(k);
                for (int b = from; b < to; b++)
                {
                    var row = new Span<float>((float*)scoresPtr + (long)b * numItems, numItems);
                    foreach (var i in excluded(firstRow + b)) row[i] = float.NegativeInfinity;
                    heap.OfferRow(row);
                    var top = new Span<long>((long*)outPtr + (long)b * k, k);
                    int filled = heap.DrainSorted(top);
                    // Fewer than k items with a finite score: all of them are in; the rest are the excluded ones.
                    for (int i = 0; filled < k && i < numItems; i++)
                        if (!(row[i] > float.NegativeInfinity)) top[filled++] = i;
                }
            });
        }
    }
}
