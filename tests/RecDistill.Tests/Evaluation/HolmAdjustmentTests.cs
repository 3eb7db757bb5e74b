using RecDistill.Evaluation;

namespace RecDistill.Tests.Evaluation;

public class HolmAdjustmentTests
{
    [Fact]
    public void Adjusts_by_hand_computed_steps_in_the_input_order()
    {
        // Sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> kept at 0.06: monotone).
        var adjusted = HolmAdjustment.Adjust([0.03, 0.01, 0.04, 0.02]);
        Assert.Equal([0.06, 0.04, 0.06, 0.06], adjusted.Select(x => Math.Round(x, 12)));
    }

    [Fact]
    public void Caps_at_one_and_keeps_a_single_test_as_it_is()
    {
        Assert.Equal([1.0, 1.0], HolmAdjustment.Adjust([0.6, 0.7]));
        Assert.Equal([0.037], HolmAdjustment.Adjust([0.037]));
        Assert.Empty(HolmAdjustment.Adjust([]));
    }
}
