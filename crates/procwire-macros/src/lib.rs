//! The `#[remote]` attribute of procwire-remoting: turns a trait into a remote interface.
//!
//! On a trait whose methods are all `async fn name(&self, arg: Type, …) -> Result`, it
//! generates, beside the trait:
//!
//! - `XxxServer<T>`: wraps an implementation and implements
//!   `procwire_remoting::ServiceObject`: it decodes exactly the declared argument types
//!   (postcard as a tuple in order, JSON as an object by name; no type names on the wire)
//!   and encodes the result;
//! - `XxxClient`: a typed async proxy (`client.method(args).await`);
//! - `XxxBlockingClient`: the same, blocking.
//!
//! A method returning `Result<T, RemoteError>` sends its error as the remote error; its
//! client method returns `Result<T, RemotingError>` (not a nested result). The trait's
//! methods are rewritten to return `impl Future + Send`, so that servers can run them on
//! any thread; implement them with `async fn`.
//!
//! Use it through `procwire_remoting::remote`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, FnArg, GenericArgument, Ident, ItemTrait, Pat, PathArguments, ReturnType,
    TraitItem, Type,
};

/// Makes a trait a remote interface: see the crate docs.
#[proc_macro_attribute]
pub fn remote(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = Tokens::from(attr);
        return syn::Error::new(attr.span(), "#[remote] takes no arguments")
            .to_compile_error()
            .into();
    }
    let input = parse_macro_input!(item as ItemTrait);
    match expand(input) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

struct Method {
    name: Ident,
    args: Vec<(Ident, Type)>,
    output: Type,
    /// `Result<T, RemoteError>`: the `T`.
    flattened: Option<Type>,
}

fn flattened_ok(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut it = args.args.iter();
    let (Some(GenericArgument::Type(ok)), Some(GenericArgument::Type(Type::Path(err))), None) =
        (it.next(), it.next(), it.next())
    else {
        return None;
    };
    let is_remote = err
        .path
        .segments
        .last()
        .is_some_and(|s| s.ident == "RemoteError");
    is_remote.then(|| ok.clone())
}

fn method(item: &mut TraitItem) -> syn::Result<Method> {
    let TraitItem::Fn(f) = item else {
        return Err(syn::Error::new(
            item.span(),
            "a #[remote] trait may only contain methods",
        ));
    };
    let sig = &mut f.sig;
    if f.default.is_some() {
        return Err(syn::Error::new(
            f.default.span(),
            "remote methods cannot have default bodies",
        ));
    }
    if ["new", "proxy"].contains(&sig.ident.to_string().as_str()) {
        return Err(syn::Error::new(
            sig.ident.span(),
            "`new` and `proxy` are taken by the generated clients; rename the method",
        ));
    }
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span,
            "remote methods must be `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "remote methods cannot be generic: the server must know every argument type",
        ));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        other => {
            let span = other.map_or(sig.ident.span(), |a| a.span());
            return Err(syn::Error::new(
                span,
                "remote methods must take `&self` (a singleton is called concurrently)",
            ));
        }
    }
    let mut args = Vec::new();
    for arg in inputs {
        let FnArg::Typed(pt) = arg else {
            unreachable!("receiver only comes first")
        };
        let Pat::Ident(id) = &*pt.pat else {
            return Err(syn::Error::new(
                pt.pat.span(),
                "remote method arguments must be plain names (they are the JSON keys)",
            ));
        };
        if matches!(&*pt.ty, Type::Reference(_) | Type::ImplTrait(_)) {
            return Err(syn::Error::new(
                pt.ty.span(),
                "remote method arguments must be owned serde types (e.g. String, not &str)",
            ));
        }
        args.push((id.ident.clone(), (*pt.ty).clone()));
    }
    let output = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, t) => (**t).clone(),
    };
    let flattened = flattened_ok(&output);
    // fn m(&self, …) -> impl Future<Output = R> + Send
    sig.asyncness = None;
    sig.output = syn::parse_quote!(
        -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
    );
    Ok(Method {
        name: sig.ident.clone(),
        args,
        output,
        flattened,
    })
}

fn expand(mut input: ItemTrait) -> syn::Result<Tokens> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "a #[remote] trait cannot be generic",
        ));
    }
    let mut methods = Vec::new();
    for item in &mut input.items {
        methods.push(method(item)?);
    }
    input
        .supertraits
        .push(syn::parse_quote!(::core::marker::Send));
    input
        .supertraits
        .push(syn::parse_quote!(::core::marker::Sync));
    input.supertraits.push(syn::parse_quote!('static));

    let krate = quote!(::procwire_remoting);
    let serde_path = "::procwire_remoting::__private::serde";
    let vis = &input.vis;
    let trait_name = &input.ident;
    let trait_str = trait_name.to_string();
    let server = format_ident!("{}Server", trait_name);
    let client = format_ident!("{}Client", trait_name);
    let blocking = format_ident!("{}BlockingClient", trait_name);

    let mut helpers = Tokens::new();
    let mut arms = Tokens::new();
    let mut descriptions = Tokens::new();
    let mut client_methods = Tokens::new();
    let mut blocking_methods = Tokens::new();
    let method_list = methods
        .iter()
        .map(|m| m.name.to_string())
        .collect::<Vec<_>>()
        .join(", ");

    for m in &methods {
        let name = &m.name;
        let name_str = name.to_string();
        let camel: String = name_str
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect();
        let owned = format_ident!("__{}{}Args", trait_name, camel);
        let borrowed = format_ident!("__{}{}ArgsRef", trait_name, camel);
        let names: Vec<&Ident> = m.args.iter().map(|(n, _)| n).collect();
        let types: Vec<&Type> = m.args.iter().map(|(_, t)| t).collect();
        let output = &m.output;
        helpers.extend(quote! {
            #[doc(hidden)]
            #[derive(#krate::__private::serde::Deserialize)]
            #[serde(crate = #serde_path, deny_unknown_fields)]
            #[allow(non_camel_case_types, dead_code)]
            struct #owned { #( #names: #types, )* }

            #[doc(hidden)]
            #[derive(#krate::__private::serde::Serialize)]
            #[serde(crate = #serde_path)]
            #[allow(non_camel_case_types)]
            struct #borrowed<'a> {
                #( #names: &'a #types, )*
                #[serde(skip)]
                __p: ::core::marker::PhantomData<&'a ()>,
            }
        });
        let encode = if m.flattened.is_some() {
            quote!(match __r {
                ::core::result::Result::Ok(v) => #krate::wire::encode_value(format, &v),
                ::core::result::Result::Err(e) => ::core::result::Result::Err(e),
            })
        } else {
            quote!(#krate::wire::encode_value(format, &__r))
        };
        arms.extend(quote! {
            #name_str => {
                let __a: #owned = #krate::wire::decode_value(format, args)?;
                ::core::result::Result::Ok(::std::boxed::Box::pin(async move {
                    let __r: #output = <T as #trait_name>::#name(&self.0, #( __a.#names ),*).await;
                    #encode
                }))
            }
        });
        let type_strs: Vec<String> = types
            .iter()
            .map(|t| quote!(#t).to_string().replace(' ', ""))
            .collect();
        let out_str = quote!(#output).to_string().replace(' ', "");
        let name_strs: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        descriptions.extend(quote! {
            #krate::service::MethodDescription {
                name: #name_str,
                args: ::std::vec![#( #krate::service::ArgDescription { name: #name_strs, ty: #type_strs } ),*],
                returns: #out_str,
            },
        });
        let ok = m.flattened.clone().unwrap_or_else(|| m.output.clone());
        let doc = format!("Calls `{name_str}` on the remote object.");
        client_methods.extend(quote! {
            #[doc = #doc]
            ///
            /// # Errors
            ///
            /// The server's error ([`RemotingError::Remote`](::procwire_remoting::RemotingError::Remote)),
            /// a timeout or a lost connection.
            pub async fn #name(&self, #( #names: #types ),*) -> ::core::result::Result<#ok, #krate::RemotingError> {
                let __a = #borrowed { #( #names: &#names, )* __p: ::core::marker::PhantomData };
                self.proxy.call::<_, #ok>(#name_str, &__a).await
            }
        });
        blocking_methods.extend(quote! {
            #[doc = #doc]
            ///
            /// # Errors
            ///
            /// As the async client's method.
            pub fn #name(&self, #( #names: #types ),*) -> ::core::result::Result<#ok, #krate::RemotingError> {
                self.blocking.block_on(self.inner.#name(#( #names ),*))
            }
        });
    }

    let server_doc = format!("Serves an implementation of [`{trait_str}`] remotely.");
    let client_doc = format!("A typed async proxy of a remote [`{trait_str}`].");
    let blocking_doc = format!("A typed blocking proxy of a remote [`{trait_str}`].");
    let unknown = format!("`{trait_str}` has no method `{{}}`; it has: {method_list}");
    let _ = Span::call_site();
    Ok(quote! {
        #input

        #helpers

        #[doc = #server_doc]
        #vis struct #server<T>(::std::sync::Arc<T>);

        impl<T> ::core::fmt::Debug for #server<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(::core::stringify!(#server))
            }
        }

        impl<T: #trait_name> #server<T> {
            /// Wraps an implementation.
            pub fn new(inner: T) -> Self {
                #server(::std::sync::Arc::new(inner))
            }

            /// Wraps a shared implementation.
            pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self {
                #server(inner)
            }
        }

        impl<T: #trait_name> #krate::ServiceObject for #server<T> {
            fn dispatch(
                self: ::std::sync::Arc<Self>,
                method: &str,
                format: #krate::Format,
                args: &[u8],
            ) -> ::core::result::Result<#krate::service::CallFuture, #krate::RemoteError> {
                match method {
                    #arms
                    _ => ::core::result::Result::Err(#krate::RemoteError::new(
                        #krate::RemoteErrorKind::UnknownMethod,
                        ::std::format!(#unknown, method),
                    )),
                }
            }

            fn interface(&self) -> #krate::InterfaceDescription {
                <Self as #krate::ServiceObject>::describe()
            }

            fn describe() -> #krate::InterfaceDescription {
                #krate::InterfaceDescription {
                    name: #trait_str,
                    methods: ::std::vec![#descriptions],
                }
            }
        }

        #[doc = #client_doc]
        #[derive(Debug, Clone)]
        #vis struct #client {
            proxy: #krate::Proxy,
        }

        impl #client {
            /// A client calling through `proxy`.
            pub fn new(proxy: #krate::Proxy) -> Self {
                #client { proxy }
            }

            /// The proxy inside (for renewals, sponsors and release).
            pub fn proxy(&self) -> &#krate::Proxy {
                &self.proxy
            }

            #client_methods
        }

        #[doc = #blocking_doc]
        #[derive(Debug, Clone)]
        #vis struct #blocking {
            inner: #client,
            blocking: #krate::BlockingProxy,
        }

        impl #blocking {
            /// A client calling through `proxy`.
            pub fn new(proxy: #krate::BlockingProxy) -> Self {
                #blocking { inner: #client::new(proxy.proxy().clone()), blocking: proxy }
            }

            /// The proxy inside.
            pub fn proxy(&self) -> &#krate::BlockingProxy {
                &self.blocking
            }

            #blocking_methods
        }
    })
}
