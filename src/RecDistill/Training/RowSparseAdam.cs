using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Training;

/// <summary>
/// Adam that updates only the rows a batch touched (lazy Adam): moments and weights of other rows
/// stay as they are. L2 weight decay is added to the gradient of the touched rows. The step count
/// used for bias correction is global, as in sparse Adam implementations.
/// </summary>
public sealed class RowSparseAdam : IDisposable
{
    private readonly Tensor _table;
    private readonly Tensor _m;
    private readonly Tensor _v;
    private readonly double _lr, _beta1, _beta2, _eps, _weightDecay;
    public long Steps { get; private set; }

    public RowSparseAdam(Tensor table, double lr, double weightDecay, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        _table = table;
        _m = torch.zeros_like(table);
        _v = torch.zeros_like(table);
        _lr = lr; _weightDecay = weightDecay; _beta1 = beta1; _beta2 = beta2; _eps = eps;
    }

    /// <summary>rowIds: unique row indices; gradRows: [rows, d] gradients for them.</summary>
    public void Step(Tensor rowIds, Tensor gradRows)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        Steps++;
        // Scalars held by `using` until the step ends, not left to the finalizer (see FixedScalars).
        double bc1 = 1 - Math.Pow(_beta1, Steps), bc2 = 1 - Math.Pow(_beta2, Steps);
        using Scalar decay = _weightDecay, beta1 = _beta1, oneMinusBeta1 = 1 - _beta1, beta2 = _beta2,
            oneMinusBeta2 = 1 - _beta2, correction2 = bc2, eps = _eps, stepSize = -_lr / bc1;
        var w = _table.index_select(0, rowIds);
        var g = _weightDecay != 0 ? gradRows.add(w, alpha: decay) : gradRows;
        var m = _m.index_select(0, rowIds).mul_(beta1).add_(g, alpha: oneMinusBeta1);
        var v = _v.index_select(0, rowIds).mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
        _m.index_copy_(0, rowIds, m);
        _v.index_copy_(0, rowIds, v);
        var denom = v.div(correction2).sqrt_().add_(eps);
        w.addcdiv_(m, denom, value: stepSize);
        _table.index_copy_(0, rowIds, w);
    }

    /// <summary>First and second moments, one row per table row (for checkpoints).</summary>
    public Tensor FirstMoment => _m;
    public Tensor SecondMoment => _v;

    /// <summary>Puts back the state a checkpoint saved.</summary>
    public void Restore(Tensor m, Tensor v, long steps)
    {
        using var _ = torch.no_grad();
        _m.copy_(m);
        _v.copy_(v);
        Steps = steps;
    }

    public void Dispose()
    {
        _m.Dispose();
        _v.Dispose();
    }
}
