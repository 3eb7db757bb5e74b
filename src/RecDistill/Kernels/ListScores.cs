using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Kernels;

/// <summary>
/// scores[r, j] = userRows[users[r]] . itemRows[items[r, j]]: the student's scores on per-user item
/// lists, which every output-layer distillation loss needs for hundreds of thousands of (user, item)
/// pairs per batch. Gathering the item vectors into [n, m, d] and multiplying costs a large copy, and
/// its backward an index_add that libtorch runs one row at a time; this runs both directions in C#
/// straight on the tables (forward and the user gradient parallel over rows; the item gradient, a
/// scatter with repeated rows, in one pass). Other devices and dtypes take the gather-and-bmm route.
/// </summary>
internal sealed class ListScores : torch.autograd.SingleTensorFunction<ListScores>
{
    public override string Name => nameof(ListScores);

    /// <summary>Whether <see cref="Compute"/> reads these tables in place (the C# kernel) rather than gathering [n, m, d].</summary>
    public static bool ReadsInPlace(Tensor userRows, Tensor itemRows) =>
        KernelSwitch.Uses(KernelSwitch.ListScores) && userRows.device_type == DeviceType.CPU && userRows.dtype == ScalarType.Float32 && itemRows.dtype == ScalarType.Float32;

    /// <summary>userRows [U, d], itemRows [I, d], users [n] (rows of userRows), items [n, m] (rows of itemRows) -> [n, m].</summary>
    public static Tensor Compute(Tensor userRows, Tensor itemRows, Tensor users, Tensor items)
    {
        if (!ReadsInPlace(userRows, itemRows))
        {
            var iv = itemRows.index_select(0, items.flatten()).view(items.shape[0], items.shape[1], -1);
            return torch.bmm(iv, userRows.index_select(0, users).unsqueeze(-1)).squeeze(-1);
        }
        users = users.to(ScalarType.Int64).contiguous();
        items = items.to(ScalarType.Int64).contiguous();
        // The kernel reads rows by these indices without bounds checks.
        if (items.numel() > 0 && (items.min().item<long>() < 0 || items.max().item<long>() >= itemRows.shape[0]))
            throw new ArgumentOutOfRangeException(nameof(items), "an item index lies outside the item rows");
        if (users.numel() > 0 && (users.min().item<long>() < 0 || users.max().item<long>() >= userRows.shape[0]))
            throw new ArgumentOutOfRangeException(nameof(users), "a user index lies outside the user rows");
        if (users.shape[0] != items.shape[0] || userRows.shape[1] != itemRows.shape[1])
            throw new ArgumentException("users [n] and items [n, m] must match, and both tables must have the same width");
        return apply(userRows, itemRows, users, items);
    }

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (u, i, users, items) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3]);
        var uc = u.detach().contiguous();
        var ic = i.detach().contiguous();
        ctx.save_for_backward(new List<Tensor> { uc, ic, users, items });
        var scores = torch.empty(items.shape[0], items.shape[1], dtype: ScalarType.Float32);
        Forward(uc, ic, users, items, scores);
        return scores;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var (u, i, users, items) = (saved[0], saved[1], saved[2], saved[3]);
        var g = gradOutput.contiguous();
        var gu = torch.zeros_like(u);
        var gi = torch.zeros_like(i);
        Backward(u, i, users, items, g, gu, gi);
        return new List<Tensor> { gu, gi, null!, null! };
    }

    private static unsafe void Forward(Tensor u, Tensor i, Tensor users, Tensor items, Tensor scores)
    {
        int n = (int)items.shape[0], m = (int)items.shape[1], d = (int)u.shape[1];
        fixed (byte* up = u.bytes, ip = i.bytes, usp = users.bytes, isp = items.bytes, sp = scores.bytes)
        {
            nint U = (nint)up, I = (nint)ip, Us = (nint)usp, Is = (nint)isp, S = (nint)sp;
            RowChunks.Run(n, 256, (from, to) =>
            {
                for (int r = from; r < to; r++)
                {
                    float* ur = (float*)U + ((long*)Us)[r] * d;
                    long* row = (long*)Is + (long)r * m;
                    float* outRow = (float*)S + (long)r * m;
                    for (int j = 0; j < m; j++) outRow[j] = ShortRows.Dot(ur, (float*)I + row[j] * d, d);
                }
            });
        }
    }

    private static unsafe void Backward(Tensor u, Tensor i, Tensor users, Tensor items, Tensor g, Tensor gu, Tensor gi)
    {
        int n = (int)items.shape[0], m = (int)items.shape[1], d = (int)u.shape[1];
        fixed (byte* up = u.bytes, ip = i.bytes, usp = users.bytes, isp = items.bytes, gp = g.bytes, gup = gu.bytes, gip = gi.bytes)
        {
            nint U = (nint)up, I = (nint)ip, Us = (nint)usp, Is = (nint)isp, G = (nint)gp, GU = (nint)gup;
            // dL/du_r = sum_j g[r, j] i_{items[r, j]}; a user may own several rows r, so sum per row
            // in parallel and add to the user's gradient row in order afterwards.
            float* perRow = (float*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)((long)n * d), sizeof(float));
            nint PerRow = (nint)perRow;
            try
            {
                RowChunks.Run(n, 256, (from, to) =>
                {
                    for (int r = from; r < to; r++)
                    {
                        float* acc = (float*)PerRow + (long)r * d;
                        long* row = (long*)Is + (long)r * m;
                        float* gRow = (float*)G + (long)r * m;
                        for (int j = 0; j < m; j++) ShortRows.MultiplyAdd((float*)I + row[j] * d, gRow[j], acc, d);
                    }
                });
                for (int r = 0; r < n; r++)
                {
                    var target = new Span<float>((float*)GU + ((long*)Us)[r] * d, d);
                    System.Numerics.Tensors.TensorPrimitives.Add(target, new ReadOnlySpan<float>(perRow + (long)r * d, d), target);
                }
            }
            finally { System.Runtime.InteropServices.NativeMemory.Free(perRow); }
            // dL/di_k = sum over (r, j) with items[r, j] = k of g[r, j] u_{users[r]}: one pass in row order.
            for (int r = 0; r < n; r++)
            {
                float* ur = (float*)U + ((long*)Us)[r] * d;
                long* row = (long*)Is + (long)r * m;
                float* gRow = (float*)G + (long)r * m;
                for (int j = 0; j < m; j++) ShortRows.MultiplyAdd(ur, gRow[j], (float*)gip + row[j] * d, d);
            }
        }
    }
}
