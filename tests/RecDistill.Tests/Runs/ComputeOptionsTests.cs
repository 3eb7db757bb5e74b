using RecDistill.Runs;

namespace RecDistill.Tests.Runs;

public class ComputeOptionsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-2)]
    public void A_thread_count_below_one_is_a_user_error_naming_it(int threads)
    {
        var e = Assert.Throws<UserErrorException>(() => new ComputeOptions(Threads: threads).Resolve());
        Assert.Contains($"{threads}", e.Message);
    }

    [Fact]
    public void An_unknown_device_is_a_user_error_naming_the_choices()
    {
        var e = Assert.Throws<UserErrorException>(() => new ComputeOptions("gpu", 1).Resolve());
        Assert.Contains("unknown device 'gpu': cpu or cuda", e.Message);
    }
}
