namespace RecDistill.Distillation;

/// <summary>DE settings (Kang et al. 2020): experts d_S -> (d_S + d_T) / 2 -> d_T chosen by a Gumbel-softmax on the teacher vector.</summary>
public sealed record DeOptions
{
    public int Experts { get; init; } = 30; // SPEC section 6
    public double Lambda { get; init; } = 0.05;
    public double SelectionTemperature { get; init; } = 1.0;
    public double SelectionTemperatureDecay { get; init; } = 0.98;
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
    public static ConsistentPreferenceDistillation Create(DistillationContext ctx, DeOptions o) =>
        new(ctx, new CpdOptions
        {
            Experts = o.Experts, Regularizer = PreferenceRegularizer.None, Lambda = o.Lambda,
            SelectionTemperature = o.SelectionTemperature, SelectionTemperatureDecay = o.SelectionTemperatureDecay,
            SelectionTemperatureFloor = o.SelectionTemperatureFloor,
        }, name: "de");
}
