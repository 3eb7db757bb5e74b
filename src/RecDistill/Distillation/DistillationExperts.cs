namespace RecDistill.Distillation;

/// <summary>DE settings (Kang et al. 2020): experts d_S -> (d_S + d_T) / 2 -> d_T chosen by a Gumbel-softmax on the teacher vector.</summary>
public sealed record DeOptions
{
    /// <summary>Number of experts E (30).</summary>
    public int Experts { get; init; } = 30; // SPEC section 6
    /// <summary>Weight lambda of the DE loss (0.05).</summary>
    public double Lambda { get; init; } = 0.05;
    /// <summary>Gumbel-softmax temperature of the expert selection at epoch 1 (1.0).</summary>
    public double SelectionTemperature { get; init; } = 1.0;
    /// <summary>Factor applied to the selection temperature per epoch (0.98).</summary>
    public double SelectionTemperatureDecay { get; init; } = 0.98;
    /// <summary>Lowest selection temperature (0.05).</summary>
    public double SelectionTemperatureFloor { get; init; } = 0.05;
}

/// <summary>
/// DE: feature distillation sum ||t - P(s)||^2 through a selection-of-experts projector, with the
/// temperature of the selection annealed per epoch. It is exactly CPD's feature term without
/// CPD's consistency regulariser, so it is built as that (one implementation of the projector loss);
/// its per-epoch diagnostic is the inconsistency rate CPD was designed to lower.
/// </summary>
public static class DistillationExperts
{
    /// <summary>DE as CPD with no regulariser, named "de".</summary>
    public static ConsistentPreferenceDistillation Create(DistillationContext ctx, DeOptions o) =>
        new(ctx, new CpdOptions
        {
            Experts = o.Experts, Regularizer = PreferenceRegularizer.None, Lambda = o.Lambda,
            SelectionTemperature = o.SelectionTemperature, SelectionTemperatureDecay = o.SelectionTemperatureDecay,
            SelectionTemperatureFloor = o.SelectionTemperatureFloor,
        }, name: "de");
}
