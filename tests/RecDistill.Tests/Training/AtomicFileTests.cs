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

    [Fact]
    public void A_symbolic_link_stays_and_the_file_it_points_to_is_replaced()
    {
        var dir = TestData.TempDir();
        var target = Path.Combine(dir, "real.csv");
        var link = Path.Combine(dir, "latest.csv");
        File.WriteAllText(target, "old");
        File.CreateSymbolicLink(link, target);
        AtomicFile.WriteText(link, "new");
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.Equal("new", File.ReadAllText(target));
    }

    [LinuxFact]
    public async Task A_pipe_or_device_is_written_through_not_replaced_by_a_file()
    {
        Assert.True(AtomicFile.IsSpecialFile("/dev/null"));
        var dir = TestData.TempDir();
        var regular = Path.Combine(dir, "plain.txt");
        File.WriteAllText(regular, "x");
        Assert.False(AtomicFile.IsSpecialFile(regular));
        Assert.False(AtomicFile.IsSpecialFile(dir));
        Assert.False(AtomicFile.IsSpecialFile(Path.Combine(dir, "missing")));

        // A named pipe stands for /dev/stdout redirected into another program: what is written reaches the
        // reader, and the pipe is still a pipe afterwards (a rename would have put a plain file in its place).
        var fifo = Path.Combine(dir, "out.fifo");
        using (var mk = System.Diagnostics.Process.Start("mkfifo", fifo)) mk.WaitForExit();
        Assert.True(AtomicFile.IsSpecialFile(fifo));
        var reader = Task.Run(() => File.ReadAllText(fifo));
        AtomicFile.WriteText(fifo, "user,rank,item\n");
        Assert.Same(reader, await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(20)))); // else nothing reached the reader
        Assert.Equal("user,rank,item\n", await reader);
        Assert.True(AtomicFile.IsSpecialFile(fifo));
    }
}
