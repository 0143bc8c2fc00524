def is_valid_parenthesization(parens):
    depth = 0
    for paren in parens:
        if paren == "(":
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                return False

    return True


"""
Nested Parens
Input:
    parens: A string of parentheses

Precondition:
    all(paren in '()' for paren in parens)

Output:
    Whether the parentheses are properly nested

Examples:
    >>> is_valid_parenthesization('((()()))()')
    True
    >>> is_valid_parenthesization(')()(')
    False
"""
