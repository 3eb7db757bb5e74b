using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Training;

/// <summary>
/// Adam with L2 weight decay written out from its formula, in double precision on plain arrays, as
/// the reference the optimizers are checked against: it shares no code with them (nor with
/// TorchSharp's Adam, whose step creates Scalars the finalizer may free mid-call). Per element:
/// g += wd·w; m = b1·m + (1 - b1)·g; v = b2·v + (1 - b2)·g²;
/// w -= lr / (1 - b1^t) · m / (sqrt(v) / sqrt(1 - b2^t) + eps).
/// </summary>
internal sealed class ReferenceAdam
{
    private const double Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8;
    private readonly double _lr, _weightDecay;
    private readonly long[] _shape;
    private readonly double[] _w, _m, _v;

    /// <summary>The step count of the bias corrections: steps taken, not calls made.</summary>
    public long Steps { get; private set; }

    public ReferenceAdam(Tensor init, double lr, double weightDecay)
    {
        _lr = lr; _weightDecay = weightDecay;
        _shape = init.shape;
        _w = ToDoubles(init);
        _m = new double[_w.Length];
        _v = new double[_w.Length];
    }

    /// <summary>One step with this gradient (of the parameter's shape).</summary>
    public void Step(Tensor grad)
    {
        Assert.Equal(_shape, grad.shape);
        var g = ToDoubles(grad);
        Steps++;
        double stepSize = _lr / (1 - Math.Pow(Beta1, Steps)), sqrtBc2 = Math.Sqrt(1 - Math.Pow(Beta2, Steps));
        for (int i = 0; i < _w.Length; i++)
        {
            double gi = g[i] + _weightDecay * _w[i];
            _m[i] = Beta1 * _m[i] + (1 - Beta1) * gi;
            _v[i] = Beta2 * _v[i] + (1 - Beta2) * gi * gi;
            _w[i] -= stepSize * _m[i] / (Math.Sqrt(_v[i]) / sqrtBc2 + Eps);
        }
    }

    /// <summary>The weights as a float64 tensor of the parameter's shape.</summary>
    public Tensor Weights => tensor(_w).view(_shape);

    /// <summary>allclose of the optimizer's weights (any float type) with the reference's, compared in float64.</summary>
    public bool Matches(Tensor weights, double rtol, double atol) =>
        allclose(weights.detach().to_type(ScalarType.Float64), Weights, rtol, atol);

    /// <summary>The largest difference, for a failure's message.</summary>
    public double MaxDifference(Tensor weights) =>
        (weights.detach().to_type(ScalarType.Float64) - Weights).abs().max().item<double>();

    private static double[] ToDoubles(Tensor t) => t.detach().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
}
