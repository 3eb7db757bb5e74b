using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests;

public class TensorCopyTests
{
    [Fact]
    public void Arrays_hold_the_values_in_row_major_order_for_any_layout()
    {
        var t = FixedScalars.Arange(12, ScalarType.Float32, CPU).view(3, 4);
        Assert.Equal(Enumerable.Range(0, 12).Select(v => (float)v), TensorCopy.ToArray<float>(t));
        // A transposed view is not contiguous: its logical order, not its storage order, comes back.
        Assert.Equal(new float[] { 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 }, TensorCopy.ToArray<float>(t.t()));
        Assert.Equal(new long[] { 5, -2 }, TensorCopy.ToArray<long>(torch.tensor(new long[] { 5, -2 })));
        Assert.Empty(TensorCopy.ToArray<int>(torch.zeros(0, dtype: ScalarType.Int32)));
    }

    [Fact]
    public void The_callers_tensor_stays_usable_and_a_wrong_element_type_is_refused()
    {
        var t = torch.tensor(new float[] { 1.5f, 2.5f });
        TensorCopy.ToArray<float>(t);
        Assert.Equal(4f, t.sum().item<float>());
        var e = Assert.Throws<ArgumentException>(() => TensorCopy.ToArray<long>(t));
        Assert.Contains("Float32", e.Message);
    }

    [Fact]
    public void Streams_receive_the_raw_values()
    {
        var t = torch.tensor(new float[] { 1, -2, 3.25f, 4, 5, 6 }).view(2, 3);
        using var s = new MemoryStream();
        TensorCopy.WriteTo<float>(s, t.t());
        var back = new float[6];
        Buffer.BlockCopy(s.ToArray(), 0, back, 0, 24);
        Assert.Equal(new float[] { 1, 4, -2, 5, 3.25f, 6 }, back);
    }
}
