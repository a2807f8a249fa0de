// CppNamedPipeClient: connects to \\.\pipe\HelloWorld, sends "Default request from
// client" and prints the server's answer.
//
// Usage: named_pipe_client [NAME [message|byte]]. In byte mode the request is written as
// a stream and the client says it has finished sending before it reads the answer.
#include <cstdio>
#include <cstring>
#include <string>

#include "procwire.hpp"

int main(int argc, char** argv) try {
    const char* name = argc > 1 ? argv[1] : "\\\\.\\pipe\\HelloWorld";
    const bool byte_mode = argc > 2 && std::strcmp(argv[2], "byte") == 0;

    ProcwireClientOptions options;
    procwire::check(procwire_client_options_init(&options), "procwire_client_options_init");
    options.access = PROCWIRE_ACCESS_READ_WRITE;
    options.read_mode = byte_mode ? PROCWIRE_PIPE_MODE_BYTE : PROCWIRE_PIPE_MODE_MESSAGE;
    options.timeout_ms = 5000;
    ProcwirePipeConnection* raw = nullptr;
    procwire::check(procwire_pipe_open(name, &options, &raw), "procwire_pipe_open");
    procwire::PipeConnection pipe(raw);
    std::printf("The named pipe (%s) is connected.\n", procwire_pipe_connection_name(pipe.get()));

    const std::string request = "Default request from client";
    const auto* bytes = reinterpret_cast<const uint8_t*>(request.data());
    std::string response;
    if (byte_mode) {
        size_t sent = 0;
        while (sent < request.size()) {
            size_t n = 0;
            procwire::check(
                procwire_pipe_write(pipe.get(), bytes + sent, request.size() - sent, &n),
                "procwire_pipe_write");
            sent += n;
        }
        procwire::check(procwire_pipe_finish_sending(pipe.get()), "procwire_pipe_finish_sending");
        std::printf("Send %zu bytes to server: \"%s\"\n", request.size(), request.c_str());
        char buffer[512];
        for (;;) {
            size_t got = 0;
            procwire::check(procwire_pipe_read(pipe.get(), reinterpret_cast<uint8_t*>(buffer),
                                               sizeof buffer, &got),
                            "procwire_pipe_read");
            if (got == 0) break;
            response.append(buffer, got);
        }
    } else {
        procwire::check(procwire_pipe_send(pipe.get(), bytes, request.size()), "procwire_pipe_send");
        std::printf("Send %zu bytes to server: \"%s\"\n", request.size(), request.c_str());
        // recv_into with a small buffer, as ReadFile with ERROR_MORE_DATA: the message
        // arrives in parts.
        char buffer[8];
        bool complete = false;
        while (!complete) {
            size_t got = 0;
            procwire::check(procwire_pipe_recv_into(pipe.get(), reinterpret_cast<uint8_t*>(buffer),
                                                    sizeof buffer, &got, &complete),
                            "procwire_pipe_recv_into");
            response.append(buffer, got);
        }
    }
    std::printf("Receive %zu bytes from server: \"%s\"\n", response.size(), response.c_str());
    return 0;
} catch (const procwire::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
