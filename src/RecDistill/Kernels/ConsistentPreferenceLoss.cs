using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Kernels;

/// <summary>
/// CPD's feature loss and listwise regulariser on the projected rows, as one autograd function on the
/// CPU. Through libtorch they were some thirty calls on [rows, d_T] tensors each way (gathers of the
/// teacher rows, differences, squares, sums, the list scores, two softmaxes and their backward
/// nodes), about a fifth of CPD's time per batch; here one pass forward that also writes the
/// gradient, and one scaling backward.
/// <para>Rows of <c>projected</c>: the batch's users [0, nU) and items [nU, nU + nI) (feature loss,
/// teacher rows by id, items weighted 0.5; none when both id lists are empty); with a list, the nL
/// list users' regulariser projections [nU + nI, nU + nI + nL) and the list items' after them. The result is [feature, listwise]:
/// sum ||t - P(s)||^2 and, per user, the cross entropy from softmax(&lt;s_u, s_q&gt; / tau) to
/// softmax(&lt;P(s_u), P(s_q)&gt; / tau) over its Q list items. Row sums are added in row order,
/// so the result does not depend on the thread count.</para>
/// </summary>
internal sealed class ConsistentPreferenceLoss : torch.autograd.SingleTensorFunction<ConsistentPreferenceLoss>
{
    private const int RowsPerChunk = 256;

    public override string Name => nameof(ConsistentPreferenceLoss);

    /// <summary>Whether the kernel runs for these inputs (float32 on the CPU); otherwise use libtorch.</summary>
    public static bool Supports(Tensor projected, Tensor teacherTable) => TensorOps.Float32OnCpu(projected, teacherTable);

    /// <summary>
    /// projected [nU + nI (+ nL + nQ), d_T]; userIds [nU], itemIds [nI] (rows of the teacher tables);
    /// for the listwise regulariser (else null): the raw student vectors of the list users [nL, d_S] and
    /// of the list items [nQ, d_S], and listRows [nL, Q] (each user's list items as rows of those).
    /// Returns [2]: the feature loss and the regulariser (0 without a list).
    /// </summary>
    public static Tensor Compute(Tensor projected, Tensor teacherUsers, Tensor teacherItems, Tensor userIds, Tensor itemIds,
        Tensor? rawUsers, Tensor? rawListItems, Tensor? listRows, double tau)
    {
        if (!Supports(projected, teacherUsers) || !Supports(projected, teacherItems))
            throw new ArgumentException("ConsistentPreferenceLoss runs on float32 CPU tensors; use libtorch otherwise");
        long nU = userIds.numel(), nI = itemIds.numel(), d = projected.shape[1];
        bool list = listRows is not null;
        if (list != (rawUsers is not null) || list != (rawListItems is not null))
            throw new ArgumentException("the listwise regulariser needs the raw user and list-item vectors and the list rows");
        long nQ = list ? rawListItems!.shape[0] : 0, nL = list ? rawUsers!.shape[0] : 0;
        if (projected.dim() != 2 || teacherUsers.shape[1] != d || teacherItems.shape[1] != d
            || projected.shape[0] != nU + nI + (list ? nL + nQ : 0)
            || (list && (listRows!.dim() != 2 || listRows.shape[0] != nL || rawUsers!.shape[1] != rawListItems!.shape[1])))
            throw new ArgumentException($"ConsistentPreferenceLoss: projected [{string.Join(", ", projected.shape)}] does not fit {nU} users, {nI} items" +
                                        (list ? $", {nL} list users, {nQ} list items and lists [{string.Join(", ", listRows!.shape)}]" : ""));
        if (tau <= 0) throw new ArgumentOutOfRangeException(nameof(tau), "the temperature must be positive");
        var none = torch.empty(0, dtype: ScalarType.Float32);
        return apply(projected, teacherUsers, teacherItems, userIds.to(ScalarType.Int64), itemIds.to(ScalarType.Int64),
            rawUsers ?? none, rawListItems ?? none, listRows?.to(ScalarType.Int64) ?? torch.empty(0, 0, dtype: ScalarType.Int64),
            torch.tensor(tau, dtype: ScalarType.Float64));
    }

    public override unsafe Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var p = ((Tensor)vars[0]).detach().contiguous();
        var tUsers = ((Tensor)vars[1]).detach().contiguous();
        var tItems = ((Tensor)vars[2]).detach().contiguous();
        var userIds = TensorCopy.ToArray<long>((Tensor)vars[3]);
        var itemIds = TensorCopy.ToArray<long>((Tensor)vars[4]);
        var rawUsers = ((Tensor)vars[5]).detach().contiguous();
        var rawList = ((Tensor)vars[6]).detach().contiguous();
        var listRowsT = ((Tensor)vars[7]).contiguous();
        double tau = ((Tensor)vars[8]).item<double>();
        int nU = userIds.Length, nI = itemIds.Length, d = (int)p.shape[1];
        bool list = listRowsT.shape[1] > 0; // [0, 0] without a list; [nL, Q >= 1] with one, even for no users
        int q = list ? (int)listRowsT.shape[1] : 0, nQ = list ? (int)rawList.shape[0] : 0, dS = list ? (int)rawList.shape[1] : 0;
        int nL = list ? (int)listRowsT.shape[0] : 0;
        var listRows = list ? TensorCopy.ToArray<long>(listRowsT) : [];
        long teacherUsers = tUsers.shape[0], teacherItems = tItems.shape[0]; // shape is a native call: read once
        foreach (var id in userIds) if (id < 0 || id >= teacherUsers) throw new ArgumentOutOfRangeException(nameof(vars), $"user id {id} outside the teacher's {teacherUsers} users");
        foreach (var id in itemIds) if (id < 0 || id >= teacherItems) throw new ArgumentOutOfRangeException(nameof(vars), $"item id {id} outside the teacher's {teacherItems} items");
        foreach (var row in listRows) if (row < 0 || row >= nQ) throw new ArgumentOutOfRangeException(nameof(vars), $"list row {row} outside the {nQ} list items");

        // Every row is written below; only the list items' rows, which gather from several users, start at zero.
        var grad = torch.empty(p.shape[0], d, dtype: ScalarType.Float32);
        var rowLoss = new double[nU + nI + nL];
        float invTau = (float)(1 / tau);
        fixed (byte* pb = p.bytes, ub = tUsers.bytes, ib = tItems.bytes, gb = grad.bytes, rub = rawUsers.bytes, rlb = rawList.bytes)
        {
            nint P = (nint)pb, U = (nint)ub, I = (nint)ib, G = (nint)gb, RU = (nint)rub, RL = (nint)rlb;
            // Feature rows: loss w ||t - p||^2, gradient -2 w (t - p).
            RowChunks.Run(nU + nI, RowsPerChunk, (from, to) =>
            {
                for (int r = from; r < to; r++)
                {
                    bool user = r < nU;
                    float* t = user ? (float*)U + userIds[r] * d : (float*)I + itemIds[r - nU] * d;
                    float* pr = (float*)P + (long)r * d, gr = (float*)G + (long)r * d;
                    float w = user ? 1f : 0.5f;
                    rowLoss[r] = w * SquaredDistance(t, pr, gr, -2f * w, d);
                }
            });
            if (list)
            {
                long pu0 = nU + nI, pq0 = (long)nU + nI + nL;
                new Span<float>((float*)G + pq0 * d, nQ * d).Clear();
                // Per user: target softmax(raw / tau), prediction softmax(proj / tau) over its Q items;
                // d proj_k = (softmax_k - target_k) / tau, passed to P(s_u) and P(s_q) through the dot products.
                var weights = new float[(long)nL * q];
                RowChunks.Run(nL, RowsPerChunk, (from, to) =>
                {
                    Span<float> raw = stackalloc float[q], proj = stackalloc float[q];
                    Span<double> target = stackalloc double[q];
                    for (int r = from; r < to; r++)
                    {
                        float* pu = (float*)P + (pu0 + r) * d, su = (float*)RU + (long)r * dS;
                        for (int k = 0; k < q; k++)
                        {
                            long row = listRows[(long)r * q + k];
                            raw[k] = ShortRows.Dot(su, (float*)RL + row * dS, dS) * invTau;
                            proj[k] = ShortRows.Dot(pu, (float*)P + (pq0 + row) * d, d) * invTau;
                        }
                        double loss = 0, rawMax = TensorPrimitives.Max<float>(raw), rawSum = 0, projMax = TensorPrimitives.Max<float>(proj), projSum = 0;
                        for (int k = 0; k < q; k++) rawSum += target[k] = Math.Exp(raw[k] - rawMax);
                        for (int k = 0; k < q; k++) target[k] /= rawSum;
                        for (int k = 0; k < q; k++) projSum += Math.Exp(proj[k] - projMax);
                        double logSum = projMax + Math.Log(projSum);
                        float* gu = (float*)G + (pu0 + r) * d;
                        new Span<float>(gu, d).Clear();
                        for (int k = 0; k < q; k++)
                        {
                            loss -= target[k] * (proj[k] - logSum);
                            float dk = (float)((Math.Exp(proj[k] - logSum) - target[k]) / tau);
                            weights[(long)r * q + k] = dk;
                            ShortRows.MultiplyAdd((float*)P + (pq0 + listRows[(long)r * q + k]) * d, dk, gu, d);
                        }
                        rowLoss[nU + nI + r] = loss;
                    }
                });
                // A list item may sit in several users' lists: its gradient is added in user order.
                for (int r = 0; r < nL; r++)
                {
                    float* pu = (float*)P + (pu0 + r) * d;
                    for (int k = 0; k < q; k++)
                        ShortRows.MultiplyAdd(pu, weights[(long)r * q + k], (float*)G + (pq0 + listRows[(long)r * q + k]) * d, d);
                }
            }
        }
        double feature = 0, listLoss = 0;
        for (int r = 0; r < nU + nI; r++) feature += rowLoss[r];
        for (int r = nU + nI; r < rowLoss.Length; r++) listLoss += rowLoss[r];
        ctx.save_for_backward(new List<Tensor> { grad });
        ctx.save_data("feature_rows", (long)(nU + nI));
        return torch.tensor(new[] { (float)feature, (float)listLoss });
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var grad = ctx.get_saved_variables()[0];
        long featureRows = (long)ctx.get_data("feature_rows");
        var g = TensorCopy.ToArray<float>(gradOutput.to(ScalarType.Float32).contiguous());
        var result = grad.clone();
        using Scalar featureScale = g[0], pairScale = g[1]; // held until the products have run
        result.narrow(0, 0, featureRows).mul_(featureScale);
        if (result.shape[0] > featureRows) result.narrow(0, featureRows, result.shape[0] - featureRows).mul_(pairScale);
        return new List<Tensor> { result, null!, null!, null!, null!, null!, null!, null!, null! };
    }

    /// <summary>
    /// CPD's diagnostic: of the batch's pairs (user, positive, negative), how many are ordered one way
    /// by the raw student vectors and the other way by the projected ones (sign of &lt;u, i&gt; - &lt;u, j&gt;
    /// before and after the projection; a zero difference counts as neither). userIds and itemIds are
    /// the sorted distinct ids whose rows the four row sets hold.
    /// </summary>
    public static unsafe (long Pairs, long Inconsistent) InconsistentPairs(Tensor userIds, Tensor itemIds, Tensor pairUsers,
        Tensor positives, Tensor negatives, Tensor rawUsers, Tensor rawItems, Tensor projectedUsers, Tensor projectedItems)
    {
        var users = TensorCopy.ToArray<long>(userIds);
        var items = TensorCopy.ToArray<long>(itemIds);
        var pu = TensorCopy.ToArray<long>(pairUsers);
        var pp = TensorCopy.ToArray<long>(positives);
        var pn = TensorCopy.ToArray<long>(negatives);
        using var su = rawUsers.detach().contiguous();
        using var si = rawItems.detach().contiguous();
        using var qu = projectedUsers.detach().contiguous();
        using var qi = projectedItems.detach().contiguous();
        int dS = (int)su.shape[1], dT = (int)qu.shape[1];
        static int RowOf(long[] sorted, long id) =>
            Array.BinarySearch(sorted, id) is var r and >= 0 ? r : throw new ArgumentException($"id {id} is not among the batch's distinct ids");
        long inconsistent = 0;
        fixed (byte* sub = su.bytes, sib = si.bytes, qub = qu.bytes, qib = qi.bytes)
        {
            float* s0 = (float*)sub, s1 = (float*)sib, q0 = (float*)qub, q1 = (float*)qib;
            for (int k = 0; k < pu.Length; k++)
            {
                long u = RowOf(users, pu[k]), i = RowOf(items, pp[k]), j = RowOf(items, pn[k]);
                float raw = ShortRows.Dot(s0 + u * dS, s1 + i * dS, dS) - ShortRows.Dot(s0 + u * dS, s1 + j * dS, dS);
                float projected = ShortRows.Dot(q0 + u * dT, q1 + i * dT, dT) - ShortRows.Dot(q0 + u * dT, q1 + j * dT, dT);
                if (MathF.Sign(raw) * MathF.Sign(projected) < 0) inconsistent++;
            }
        }
        return (pu.Length, inconsistent);
    }

    /// <summary>sum_j (t_j - p_j)^2, writing scale (t_j - p_j) to g.</summary>
    private static unsafe double SquaredDistance(float* t, float* p, float* g, float scale, int d)
    {
        int j = 0;
        var acc = Vector512<float>.Zero;
        var s = Vector512.Create(scale);
        for (; j + 16 <= d; j += 16)
        {
            var diff = Vector512.Load(t + j) - Vector512.Load(p + j);
            acc += diff * diff;
            (diff * s).Store(g + j);
        }
        double sum = Vector512.Sum(acc);
        for (; j < d; j++)
        {
            float diff = t[j] - p[j];
            sum += diff * diff;
            g[j] = scale * diff;
        }
        return sum;
    }
}
