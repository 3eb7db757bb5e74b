// The library's own code uses the kernels everywhere; they are internal to it (tests and benchmarks see
// them through InternalsVisibleTo in RecDistill.csproj).
global using RecDistill.Kernels;
