using RecDistill.Training;

namespace RecDistill.Tests.Training;

public class AtomicFileTests
{
    [Fact]
    public void Writing_a_file_removes_temporaries_of_dead_writers_only()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "checkpoint.bin");
        // A writer killed mid-write (no process has this id: above Linux's pid_max) and a live one (pid 1).
        var stale = Path.Combine(dir, ".checkpoint.bin.2147483000.tmp");
        var live = Path.Combine(dir, ".checkpoint.bin.1.tmp");
        var other = Path.Combine(dir, ".model.bin.2147483000.tmp");
        foreach (var f in new[] { stale, live, other }) File.WriteAllText(f, "partial");
        AtomicFile.WriteText(path, "whole");
        Assert.Equal("whole", File.ReadAllText(path));
        Assert.False(File.Exists(stale), "a dead writer's temporary stays behind");
        Assert.True(File.Exists(live), "a live writer's temporary was removed");
        Assert.True(File.Exists(other), "another file's temporary was removed");
    }
}
