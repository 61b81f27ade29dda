#!/usr/bin/env python3
"""Rewrites copies of CUDA sources so that they compile as host C++ under the CUDA emulator.

The constructs that host C++ cannot express become calls into the emulator (kernel_launch.h,
inline_ptx.h); the rest of CUDA's syntax (__global__, __device__, __shared__, ...) is left to the
macros of cuda_emulator_prelude.h. Every line stays where it was, and each copy starts with a
#line directive naming its original, so that __FILE__, __LINE__, compiler messages and the
emulator's reports point at the repository's file:

  extern __shared__ __align__(N) T name[];
    -> T* const name = reinterpret_cast<T*>(<emulator>::DynamicShared());
  kernel<<<grid, block, bytes, stream>>>(args)
    -> <emulator>::Launch(kernel, grid, block, bytes, stream)(args)
  kernel_template<<<grid, block>>>(args)       kernel_template<T><<<grid, block>>>(args)
    -> <emulator>::LaunchTemplate("kernel_template",
           [&](auto... a) { kernel_template(a...); }, grid, block)(args)
       (a __global__ template that one of the FILEs defines, given fewer template arguments
       than it has parameters: the others are deduced from the call's arguments)
  asm volatile("ptx" : outputs : inputs);
    -> { static const <emulator>::PtxInstruction* const usine_emulated_ptx =
             <emulator>::ParsePtx("ptx", __FILE__, __LINE__);
         <emulator>::ExecutePtx(usine_emulated_ptx, {<emulator>::OutOperand(...), ...}); }

usage: transform_cuda_source.py --source-root ROOT --output-root OUT FILE...
  FILEs are relative to ROOT; each is written to the same relative path under OUT.
"""
import argparse
import os
import re
import sys

EMULATOR = '::usine::testing::cuda_emulator::'


def code_mask(s):
    """mask[i] is True where s[i] is code: not in a comment, a string or a character literal."""
    n = len(s)
    mask = [True] * n
    i = 0

    def hide(begin, end):
        for k in range(begin, min(end, n)):
            mask[k] = False

    while i < n:
        if s.startswith('//', i):
            end = s.find('\n', i)
            end = n if end < 0 else end
        elif s.startswith('/*', i):
            end = s.find('*/', i + 2)
            end = n if end < 0 else end + 2
        elif s.startswith('R"', i) and (i == 0 or not (s[i - 1].isalnum() or s[i - 1] == '_')):
            m = re.match(r'R"([^(\s]*)\(', s[i:])
            if not m:
                i += 1
                continue
            end = s.find(')' + m.group(1) + '"', i)
            end = n if end < 0 else end + len(m.group(1)) + 2
        elif s[i] == '"' or (s[i] == "'" and not (i > 0 and s[i - 1].isalnum())):
            end = i + 1
            while end < n and s[end] != s[i] and s[end] != '\n':
                end += 2 if s[end] == '\\' else 1
            end += 1
        else:
            i += 1
            continue
        hide(i, end)
        i = end
    return mask


def first_code_match(pattern, s):
    mask = code_mask(s)
    for m in pattern.finditer(s):
        if mask[m.start()]:
            return m, mask
    return None, mask


def matching_paren(s, mask, i):
    """The index of the ')' that closes the code '(' at s[i]."""
    depth = 0
    for j in range(i, len(s)):
        if mask[j] and s[j] == '(':
            depth += 1
        elif mask[j] and s[j] == ')':
            depth -= 1
            if depth == 0:
                return j
    raise ValueError('unbalanced parentheses at offset %d' % i)


def split_top_level(s, mask, separator):
    """(begin, end) of the parts of s between code `separator`s outside (), [] and {}."""
    parts, depth, begin = [], 0, 0
    for j, c in enumerate(s):
        if not mask[j]:
            continue
        if c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
        elif c == separator and depth == 0:
            parts.append((begin, j))
            begin = j + 1
    parts.append((begin, len(s)))
    return parts


def same_lines(old, new):
    """`new`, followed by as many line breaks as `old` spans, so that later lines keep their
    numbers."""
    return new + '\n' * old.count('\n')


SHARED_RE = re.compile(
    r'extern\s+__shared__\s+((?:__align__\s*\(\s*\d+\s*\)\s*|alignas\s*\(\s*\d+\s*\)\s*)*)'
    r'([A-Za-z_][\w:<>\s]*?)\s*((?:__align__\s*\(\s*\d+\s*\)\s*)*)\b([A-Za-z_]\w*)\s*\[\s*\]\s*;')


def rewrite_shared(s):
    mask = code_mask(s)
    out, last = [], 0
    for m in SHARED_RE.finditer(s):
        if not mask[m.start()]:
            continue
        element, name = ' '.join(m.group(2).split()), m.group(4)
        new = '%s* const %s = reinterpret_cast<%s*>(%sDynamicShared());' % (element, name, element,
                                                                          EMULATOR)
        out += [s[last:m.start()], same_lines(m.group(0), new)]
        last = m.end()
    return ''.join(out) + s[last:]


TEMPLATE_KERNEL_RE = re.compile(r'template\s*<([^;{]*?)>\s*__global__\s+void\s+'
                                r'(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(')


def top_level_count(arguments):
    """How many comma-separated items `arguments` (a template's parameters or arguments, without
    the angle brackets) holds, counting only commas outside nested brackets."""
    if not arguments.strip():
        return 0
    depth = 0
    count = 1
    for c in arguments:
        if c in '<([{':
            depth += 1
        elif c in '>)]}':
            depth -= 1
        elif c == ',' and depth == 0:
            count += 1
    return count
LAUNCH_RE = re.compile(r'<<<')


def launched_kernel_start(s, launch):
    """The index where the kernel expression before `<<<` at `launch` begins: an id-expression,
    possibly with template arguments."""
    j = launch - 1
    while j >= 0 and s[j].isspace():
        j -= 1
    if s[j] == '>':
        depth = 0
        while j >= 0:
            if s[j] == '>':
                depth += 1
            elif s[j] == '<':
                depth -= 1
                if depth == 0:
                    j -= 1
                    break
            j -= 1
    while j >= 0 and (s[j].isalnum() or s[j] in '_:'):
        j -= 1
    return j + 1


def rewrite_launches(s, template_kernels):
    while True:
        m, _ = first_code_match(LAUNCH_RE, s)
        if m is None:
            return s
        start = launched_kernel_start(s, m.start())
        kernel = s[start:m.start()].strip()
        end = s.find('>>>', m.end())
        if end < 0:
            raise ValueError('<<< without >>>')
        configuration = ' '.join(s[m.end():end].split())
        name = re.fullmatch(r'([\w:]+)\s*(?:<(.*)>)?', kernel, re.S)
        deduced = False
        if name and name.group(1).split('::')[-1] in template_kernels:
            given = top_level_count(name.group(2) or '')
            deduced = given < template_kernels[name.group(1).split('::')[-1]]
        if deduced:
            new = ('%sLaunchTemplate("%s", [&](auto... usine_emulated_arguments) { '
                   '%s(usine_emulated_arguments...); }, %s)'
                   % (EMULATOR, kernel, kernel, configuration))
        else:
            new = '%sLaunch(%s, %s)' % (EMULATOR, kernel, configuration)
        s = s[:start] + same_lines(s[start:end + 3], new) + s[end + 3:]


ASM_RE = re.compile(r'\b(?:asm|__asm__|__asm)\b\s*(?:volatile\b|__volatile__\b)?\s*\(')
OPERAND_RE = re.compile(r'^(\[\w+\]\s*)?("[^"]*")\s*\((.*)\)$', re.S)


def asm_template(body, path):
    """The string literals that open an asm statement's body, and where they end."""
    literals, k = [], 0
    while True:
        while k < len(body) and body[k].isspace():
            k += 1
        if k >= len(body) or body[k] != '"':
            break
        e = k + 1
        while body[e] != '"':
            e += 2 if body[e] == '\\' else 1
        literals.append(body[k:e + 1])
        k = e + 1
    if not literals:
        raise ValueError('%s: an asm statement without a string template' % path)
    return ' '.join(literals), k


def asm_operands(section, kind, path):
    operands = []
    mask = code_mask(section)
    for begin, end in split_top_level(section, mask, ','):
        text = section[begin:end].strip()
        if not text:
            continue
        m = OPERAND_RE.match(text)
        if not m:
            raise ValueError('%s: cannot parse the asm operand %r' % (path, text))
        if m.group(1):
            raise ValueError('%s: named asm operands are not supported: %r' % (path, text))
        operands.append('%s%s(%s, %s)' % (EMULATOR, kind, m.group(2), ' '.join(m.group(3).split())))
    return operands


def rewrite_asm(s, path):
    while True:
        m, mask = first_code_match(ASM_RE, s)
        if m is None:
            return s
        open_paren = m.end() - 1
        close_paren = matching_paren(s, mask, open_paren)
        body = s[open_paren + 1:close_paren]
        template, k = asm_template(body, path)
        rest = body[k:]
        sections = [rest[b:e] for b, e in split_top_level(rest, code_mask(rest), ':')]
        sections = sections[1:] if sections and not sections[0].strip() else sections
        outputs = sections[0] if sections else ''
        inputs = sections[1] if len(sections) > 1 else ''
        operands = (asm_operands(outputs, 'OutOperand', path) +
                    asm_operands(inputs, 'InOperand', path))
        after = close_paren + 1
        while after < len(s) and s[after] in ' \t':
            after += 1
        if after < len(s) and s[after] == ';':
            after += 1
        new = ('{ static const %sPtxInstruction* const usine_emulated_ptx = %sParsePtx(%s, '
               '__FILE__, __LINE__); %sExecutePtx(usine_emulated_ptx, {%s}); }'
               % (EMULATOR, EMULATOR, template, EMULATOR, ', '.join(operands)))
        s = s[:m.start()] + same_lines(s[m.start():after], new) + s[after:]


def rewrite(text, original_path, template_kernels):
    text = rewrite_asm(rewrite_launches(rewrite_shared(text), template_kernels), original_path)
    return '#line 1 "%s"\n%s' % (original_path, text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--source-root', required=True)
    parser.add_argument('--output-root', required=True)
    parser.add_argument('files', nargs='+')
    args = parser.parse_args()
    texts = {}
    for relative in args.files:
        with open(os.path.join(args.source_root, relative), encoding='utf-8') as f:
            texts[relative] = f.read()
    # A file may launch a kernel template that a header among the files defines.
    # The kernel templates by name, with their parameter counts.
    template_kernels = {}
    for text in texts.values():
        for parameters, name in TEMPLATE_KERNEL_RE.findall(text):
            template_kernels[name] = top_level_count(parameters)
    for relative, text in texts.items():
        original = os.path.abspath(os.path.join(args.source_root, relative))
        try:
            rewritten = rewrite(text, original, template_kernels)
        except ValueError as error:
            sys.exit('transform_cuda_source.py: %s: %s' % (relative, error))
        destination = os.path.join(args.output_root, relative)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with open(destination, 'w', encoding='utf-8') as f:
            f.write(rewritten)


if __name__ == '__main__':
    main()
