// CSharpFileMappingClient: opens the named shared memory Local\HelloWorld read-only and
// prints the C string the server wrote at its start.
//
// Usage: mono FileMappingClient.exe [NAME]
using System;
using System.Runtime.InteropServices;
using System.Text;

static class FileMappingClient
{
    static int Main(string[] args)
    {
        string name = args.Length > 0 ? args[0] : @"Local\HelloWorld";
        try
        {
            IntPtr mapping;
            Procwire.Check(Procwire.procwire_mapping_open(name, Procwire.AccessRead, out mapping), "procwire_mapping_open");
            try
            {
                Console.WriteLine("The file mapping ({0}) is opened ({1} bytes)", name, Procwire.procwire_mapping_len(mapping));
                // A copy out of shared memory (MapViewOfFile + a read), up to the NUL.
                var view = new byte[1024];
                Procwire.Check(Procwire.procwire_mapping_read(mapping, UIntPtr.Zero, view, (UIntPtr)view.Length), "procwire_mapping_read");
                int end = Array.IndexOf(view, (byte)0);
                string message = Encoding.UTF8.GetString(view, 0, end < 0 ? view.Length : end);
                Console.WriteLine("Read from the file mapping:\n\"{0}\"", message);
                // The same bytes straight from the view's pointer.
                string direct = Marshal.PtrToStringAnsi(Procwire.procwire_mapping_ptr(mapping));
                Console.WriteLine("Through the pointer: \"{0}\"", direct);
            }
            finally
            {
                Procwire.procwire_mapping_free(mapping);
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
