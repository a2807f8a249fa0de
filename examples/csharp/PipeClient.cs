// CSharpPipeClient: connects to the pipe \\.\pipe\HelloWorld in message read mode, sends
// requests and prints the server's answers.
//
// Usage: mono PipeClient.exe [NAME [COUNT]] (COUNT requests, 1 by default)
using System;
using System.Text;

static class PipeClient
{
    static int Main(string[] args)
    {
        string name = args.Length > 0 ? args[0] : @"\\.\pipe\HelloWorld";
        int count = args.Length > 1 ? int.Parse(args[1]) : 1;
        try
        {
            Procwire.ClientOptions options;
            Procwire.Check(Procwire.procwire_client_options_init(out options), "procwire_client_options_init");
            options.ReadMode = Procwire.PipeModeMessage;
            options.TimeoutMs = 5000;
            IntPtr pipe;
            Procwire.Check(Procwire.procwire_pipe_open(name, ref options, out pipe), "procwire_pipe_open");
            Console.WriteLine("The named pipe ({0}) is connected.", name);
            try
            {
                for (int i = 1; i <= count; i++)
                {
                    byte[] request = Encoding.UTF8.GetBytes("Default request from client #" + i);
                    Procwire.Check(Procwire.procwire_pipe_send(pipe, request, (UIntPtr)request.Length), "procwire_pipe_send");
                    Console.WriteLine("Send {0} bytes to server: \"{1}\"", request.Length, Encoding.UTF8.GetString(request));
                    byte[] response = Procwire.Recv(pipe, 5000);
                    Console.WriteLine("Receive {0} bytes from server: \"{1}\"", response.Length, Encoding.UTF8.GetString(response));
                }
            }
            finally
            {
                Procwire.procwire_pipe_connection_free(pipe);
            }
            return 0;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }
    }
}
