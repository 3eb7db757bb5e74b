using static TorchSharp.torch;
var a = randn(3, 4); Console.WriteLine(a.matmul(a.T).sum().item<float>()); Console.WriteLine(TorchSharp.torch.__version__);
