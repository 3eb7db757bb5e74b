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
    /// <summary>Top-k per user with each user's train items excluded: [users, k], best first.</summary>
    public static Tensor Compute(Tensor users, Tensor items, int[][] train, int k, long maxScoresPerBatch = 16L << 20) =>
        Compute(users, items, row => train[row], k, maxScoresPerBatch);

    /// <summary>Top-k per row of <paramref name="users"/>, the items <paramref name="excluded"/>(row) left out.</summary>
    public static Tensor Compute(Tensor users, Tensor items, Func<int, IEnumerable<int>> excluded, int k,
        long maxScoresPerBatch = 16L << 20)
    {
        using var _ = torch.no_grad();
        int numUsers = (int)users.shape[0], numItems = (int)items.shape[0];
        k = Math.Min(k, numItems);
        int batch = (int)Math.Clamp(maxScoresPerBatch / numItems, 1, 4096);
        var result = torch.empty(numUsers, k, dtype: ScalarType.Int64, device: users.device);
        var itemsT = items.t();
        for (int start = 0; start < numUsers; start += batch)
        {
            using var scope = torch.NewDisposeScope();
            int n = Math.Min(batch, numUsers - start);
            var scores = users.narrow(0, start, n).matmul(itemsT);
            var masked = new List<long>();
            for (int b = 0; b < n; b++)
                foreach (var i in excluded(start + b)) masked.Add((long)b * numItems + i);
            if (masked.Count > 0)
                scores.view(-1).index_fill_(0, torch.tensor(masked.ToArray(), device: scores.device), FixedScalars.NegativeInfinity);
            var (_, top) = scores.topk(k, dim: 1);
            result.narrow(0, start, n).copy_(top);
        }
        return result;
    }
}

