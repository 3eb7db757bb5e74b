using RecDistill.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>
/// Top-K items per user of a set of final vectors, train items excluded, computed in user batches
/// (never a users x items matrix for all users). Used for the teacher once (<see cref="TeacherTopKCache"/>)
/// and for the student once per epoch.
/// </summary>
public static class TopKRanking
{
    public static Tensor Compute(Tensor users, Tensor items, int[][] train, int k, long maxScoresPerBatch = 16L << 20)
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
                foreach (var i in train[start + b]) masked.Add((long)b * numItems + i);
            if (masked.Count > 0)
                scores.view(-1).index_fill_(0, torch.tensor(masked.ToArray(), device: scores.device), float.NegativeInfinity);
            var (_, top) = scores.topk(k, dim: 1);
            result.narrow(0, start, n).copy_(top);
        }
        return result;
    }
}

