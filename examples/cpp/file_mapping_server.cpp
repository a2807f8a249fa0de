// CppFileMappingServer: creates the named shared memory Local\HelloWorld (65536 bytes,
// backed by memory), writes "Message from the first process" into it as a C string, and
// keeps it until ENTER is pressed or standard input closes.
//
// Usage: file_mapping_server [NAME [MESSAGE]]
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "procwire.hpp"

int main(int argc, char** argv) try {
    const char* name = argc > 1 ? argv[1] : "Local\\HelloWorld";
    const std::string message = argc > 2 ? argv[2] : "Message from the first process";
    const uint64_t map_size = 65536;

    ProcwireMapping* raw = nullptr;
    procwire::check(procwire_mapping_create(name, map_size, nullptr, &raw),
                    "procwire_mapping_create");
    procwire::Mapping mapping(raw);
    std::printf("The file mapping (%s) is created\n", name);
    std::printf("The file view is mapped (%zu bytes)\n", procwire_mapping_len(mapping.get()));

    // Through the raw pointer, as a C++ program would, and the NUL with a checked write.
    uint8_t* view = procwire_mapping_ptr(mapping.get());
    std::memcpy(view, message.data(), message.size());
    const uint8_t nul = 0;
    procwire::check(procwire_mapping_write(mapping.get(), message.size(), &nul, 1),
                    "procwire_mapping_write");
    std::printf("This message is written to the view:\n\"%s\"\n", message.c_str());
    std::printf("Press ENTER to clean up resources and quit\n");
    std::fflush(stdout);
    std::string line;
    std::getline(std::cin, line);
    mapping.reset();
    std::printf("The file view is unmapped and the file mapping is closed\n");
    return 0;
} catch (const procwire::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
