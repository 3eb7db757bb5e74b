using RecDistill;

namespace RecDistill.Tests;

public class AllocatorTuningTests
{
    [Fact]
    public void Malloc_settings_apply_on_linux_glibc_and_twice_is_harmless()
    {
        bool glibc = OperatingSystem.IsLinux()
            && (File.Exists("/lib/x86_64-linux-gnu/libc.so.6") || File.Exists("/lib/aarch64-linux-gnu/libc.so.6"));
        Assert.Equal(glibc, AllocatorTuning.KeepFreedMemory());
        Assert.Equal(glibc, AllocatorTuning.KeepFreedMemory());
    }
}
