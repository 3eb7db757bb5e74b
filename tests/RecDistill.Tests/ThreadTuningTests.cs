using System.Runtime.InteropServices;
using RecDistill;

namespace RecDistill.Tests;

public class ThreadTuningTests
{
    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr NativeGetEnv(string name);

    [Fact]
    public void Sleeping_workers_are_asked_for_in_the_native_environment_unless_the_user_chose_a_policy()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(ThreadTuning.PreferSleepingWorkers());
            return;
        }
        var before = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY");
        var policy = ThreadTuning.PreferSleepingWorkers();
        Assert.Equal(string.IsNullOrEmpty(before) ? "PASSIVE" : before, policy);
        // libgomp reads the C library's environment, not .NET's copy of it.
        Assert.Equal(policy, Marshal.PtrToStringAnsi(NativeGetEnv("OMP_WAIT_POLICY")));
        Assert.Equal(policy, ThreadTuning.PreferSleepingWorkers()); // twice is harmless
    }
}
